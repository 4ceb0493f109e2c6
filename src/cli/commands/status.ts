// connito-miner status --path DIR: running or not, and the supervisor's /status summary.
import { resolveRunDir } from '../../config/index.js';
import { readPidFile, readRunState } from '../../supervisor/index.js';
import { fail, parseCommandArgs } from '../args.js';

export const usage = `Usage: connito-miner status --path DIR [--json]

Say whether the miner runs in DIR and, when it does, summarise its status server's /status:
phase, block, trainer state, last loss, last checkpoint, last task outcomes.
Exit codes: 0 running, 3 not running, 1 running but the status server does not answer.

Options:
  --path DIR     run directory (or its config.yaml)   (required)
  --json         print /status as JSON
  -h, --help     show this help
`;

const options = { path: { type: 'string' }, json: { type: 'boolean' } } as const;

interface StatusJson {
  state?: string;
  ready?: boolean;
  pid?: number;
  uptimeSec?: number;
  phase?: { name: string; block: number; blocksRemaining: number } | null;
  trainer?: {
    state?: string;
    pid?: number | null;
    backend?: string | null;
    restarts?: number;
    progress?: { step: number; innerOptStep?: number; loss: number; lr: number; tokensPerSec: number; at: string } | null;
    lastCheckpoint?: { path: string; globalVer: number; innerOpt: number; at: string } | null;
    lastExit?: { reason: string; detail: string } | null;
  };
  tasks?: { running?: { task: string }[] };
  duties?: Record<string, { ok: boolean; detail?: string; at: string }>;
}

export async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs(argv, options, usage);
  if (typeof v === 'number') return v;
  if (v.path === undefined) return fail('status', `--path is required\n\n${usage}`, 2);
  const { runDir } = resolveRunDir(v.path);
  const pf = readPidFile(runDir);
  if (!pf.running) {
    const why = pf.pid === null ? '' : ` (stale pid file: pid ${pf.pid} is not running)`;
    if (v.json) process.stdout.write(`${JSON.stringify({ running: false, runDir })}\n`);
    else process.stdout.write(`connito-miner is not running in ${runDir}${why}\n`);
    return 3;
  }
  const state = readRunState(runDir);
  const url = state?.statusUrl ?? null;
  if (url === null) {
    process.stdout.write(`connito-miner is running in ${runDir} (pid ${pf.pid}); its status server is not (yet) listening\n`);
    return 1;
  }
  let s: StatusJson;
  try {
    const res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(5000) });
    s = (await res.json()) as StatusJson;
  } catch (err) {
    process.stdout.write(`connito-miner is running in ${runDir} (pid ${pf.pid}) but ${url}/status does not answer: ${(err as Error).message}\n`);
    return 1;
  }
  if (v.json) {
    process.stdout.write(`${JSON.stringify({ running: true, runDir, statusUrl: url, ...s })}\n`);
    return 0;
  }
  const t = s.trainer ?? {};
  const p = t.progress;
  const lines = [
    `connito-miner is running in ${runDir} (pid ${pf.pid}, ${s.state}${s.ready ? ', ready' : ''}, up ${s.uptimeSec ?? '?'} s)`,
    `  status    ${url}`,
    `  phase     ${s.phase ? `${s.phase.name} at block ${s.phase.block} (${s.phase.blocksRemaining} blocks left)` : 'unknown (no phase clock yet)'}`,
    `  trainer   ${t.state ?? '?'}${t.pid ? ` pid ${t.pid}` : ''}${t.backend ? ` on ${t.backend}` : ''}, restarts ${t.restarts ?? 0}${t.lastExit ? ` (last exit: ${t.lastExit.detail})` : ''}`,
    `  training  ${p ? `step ${p.innerOptStep ?? p.step}, loss ${p.loss}, lr ${p.lr}, ${Math.round(p.tokensPerSec)} tokens/s (${p.at})` : 'no progress reported yet'}`,
    `  checkpoint ${t.lastCheckpoint ? `${t.lastCheckpoint.path} (globalver ${t.lastCheckpoint.globalVer}, inneropt ${t.lastCheckpoint.innerOpt})` : 'none reported yet'}`,
    `  tasks     ${s.tasks?.running?.length ? s.tasks.running.map((r) => r.task).join(', ') : 'none running'}`,
    ...Object.entries(s.duties ?? {}).map(([k, d]) => `  ${k.padEnd(9)} ${d.ok ? 'ok' : 'FAILED'}${d.detail ? `: ${d.detail}` : ''} (${d.at})`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

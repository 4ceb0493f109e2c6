// `connito-miner devnet`: a whole subnet on one machine.
//
//   devnode (subtensor JSON-RPC, real metadata)  ←  owner phase service (fastify)
//        ↑            ↑                                   ↑
//   validators (in this process: fastify HTTP, chain commits, engine evaluation, merge)
//        ↑
//   miners (child processes: the real `connito-miner start` — supervisor, phase clock, task pool,
//           trainer child — each with its own wallet and run directory under DIR/miners/)
//
// Timeline: the chain fast-forwards through a bootstrap cycle 0 in which the validators publish the
// first global model (ValidatorCommit1/2 at the normal block time), the miners start, the chain
// holds on the last block of cycle 0 until every miner is up, and then cycles 1…K run in real
// (short) time. The run narrates what happens in plain lines and ends with one summary line.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setPriority, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChainClient } from '../chain/client.js';
import { decodeCommitment } from '../chain/commitments.js';
import { loadWallet, type Wallet } from '../chain/wallet.js';
import { createConfigFile, type ConfigPatch } from '../config/index.js';
import { decodeMinerCommit, decodeSignatureCommit } from '../protocol/commits.js';
import { phaseAt, scheduleFromLengths, type PhaseLengths, type PhaseName, type PhaseSchedule } from '../protocol/phases.js';
import { verifyModelHash } from '../protocol/signing.js';
import type { Logger } from '../telemetry/logger.js';
import { phaseRange } from '../workers/commit.js';
import { BlockClock } from './block-clock.js';
import { startDevnode, type Devnode, type GenesisInput } from './chain/index.js';
import { MinerProcess } from './miner-process.js';
import { DEVNET_DATA, DEVNET_GROUP_NAME, Evaluator, prepareDevnetModel, type DevnetModel } from './model.js';
import { startOwnerService, type OwnerService } from './owner-service.js';
import { DevValidator, MergeBoard, type ValidatorEvent } from './validator.js';
import { writeDevWallet, type DevWallet } from './wallets.js';

/** Short phases: one cycle takes about 17 s at 150 ms blocks. */
export const DEVNET_PHASES: Readonly<PhaseLengths> = Object.freeze({ distribute: 12, train: 40, commit: 8, submission: 12, validate: 8, merge: 8 });
export const DEVNET_BLOCK_MS = 150;

const HERE = dirname(fileURLToPath(import.meta.url));
/** bin/connito-miner.js, from dist/devnet/ (and from src/devnet/ under a TS runner). */
export const CLI_BIN = resolve(HERE, '..', '..', 'bin', 'connito-miner.js');

export interface DevnetOptions {
  /** Run directory; default a fresh temporary directory. */
  dir?: string;
  miners?: number;
  validators?: number;
  /** Cycles with miners (after the bootstrap cycle 0); 0 = until stopped. */
  cycles?: number;
  blockMs?: number;
  phases?: Partial<PhaseLengths>;
  /** Narration, one plain line per call. */
  out?: (line: string) => void;
  /** JSON log of the devnode and validators. */
  logger: Logger;
  /** Stops the run early (Ctrl-C). */
  signal?: AbortSignal;
  faults?: {
    /** Miners point at an owner phase service that is not there (schedule from config.yaml). */
    ownerDown?: boolean;
  };
  hooks?: {
    /** After every miner is up, before cycle 1 starts (the chain is held). */
    minersReady?(ctx: DevnetContext): void | Promise<void>;
    /** At the first block of each phase of cycles 1… (awaited before the summary; blocks keep coming meanwhile). */
    phase?(ctx: DevnetContext, phase: PhaseName, cycle: number, block: number): void | Promise<void>;
    /** After the last cycle, before anything is stopped. */
    beforeStop?(ctx: DevnetContext): void | Promise<void>;
  };
  /** Miners' children: extra environment. */
  minerEnv?: NodeJS.ProcessEnv;
}

export interface DevnetMiner {
  name: string;
  dir: string;
  wallet: DevWallet;
  process: MinerProcess;
  /** What the orchestrator saw of it, per cycle. */
  seen: Map<number, MinerCycle>;
}

export interface MinerCycle {
  downloaded: { version: number; hash: string; validator: string } | null;
  reloaded: number | null;
  commit1: { block: number; payload: string } | null;
  commit2: { block: number; payload: string; version: number; hash: string } | null;
  commitsVerified: boolean;
  submitted: { destination: string; block: number } | null;
}

export interface DevnetContext {
  dir: string;
  node: Devnode;
  clock: BlockClock;
  owner: OwnerService | null;
  ownerUrl: string;
  schedule: PhaseSchedule;
  model: DevnetModel;
  validators: DevValidator[];
  miners: DevnetMiner[];
  /** A read-only chain client of the orchestrator. */
  chain: ChainClient;
  out: (line: string) => void;
}

export interface DevnetSummary {
  cycles: number;
  completed: number;
  miners: number;
  validators: number;
  versions: number[];
  lossBefore: number | null;
  lossAfter: number | null;
  commits: number;
  accepted: number;
  expected: number;
  line: string;
}

export interface DevnetResult {
  code: number;
  dir: string;
  summary: DevnetSummary;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

const short = (s: string): string => `${s.slice(0, 6)}…`;
const fmt = (x: number | null): string => (x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(3));

/** A devnet miner's config.yaml content. */
export function devnetMinerConfig(o: {
  name: string;
  wallet: DevWallet;
  walletRoot: string;
  chainUrl: string;
  ownerUrl: string;
  model: DevnetModel;
  schedule: PhaseLengths;
  blockMs: number;
  index: number;
  validators: number;
  miners: number;
  cycles: number;
}): ConfigPatch {
  return {
    run: { run_name: o.name },
    chain: { network: o.chainUrl, coldkey_name: o.wallet.name, hotkey_name: o.wallet.hotkeyName, wallet_path: o.walletRoot, ip: '127.0.0.1', port: 8091 + o.index },
    model: { base_path: o.model.dir },
    task: { expert_group_name: DEVNET_GROUP_NAME, base_path: o.model.groupsRoot },
    cycle: {
      distribute_period: o.schedule.distribute,
      train_period: o.schedule.train,
      commit_period: o.schedule.commit,
      submission_period: o.schedule.submission,
      validate_period: o.schedule.validate,
      merge_period: o.schedule.merge,
      owner_url: o.ownerUrl,
      block_time_sec: o.blockMs / 1000,
      api_timeout_sec: 2,
      api_retries: 1,
      api_backoff_sec: 1.2,
    },
    data: { sources: [{ type: 'synthetic', seed: o.index + 1, weight: 1 }], sequence_length: DEVNET_DATA.sequenceLength, per_device_train_batch_size: DEVNET_DATA.batchSize },
    local_par: { gradient_accumulation_steps: 2 },
    ckpt: { checkpoint_interval: 10, checkpoint_topk: 3 },
    opt: { lr: 0.01, weight_decay: 0 },
    sched: { warmup_steps: 0, total_steps: 100_000 },
    trainer: {
      backend: 'cpu',
      precision: 'fp32',
      threads: 1,
      heartbeat_interval_sec: 1,
      heartbeat_timeout_sec: 30,
      stop_timeout_sec: 20,
      restart: { max_restarts: 5, window_sec: 120, backoff_initial_sec: 0.3, backoff_max_sec: 2, backoff_factor: 2 },
    },
    supervisor: { shutdown_timeout_sec: 40, task_stop_timeout_sec: 5, pool_min_threads: 1, pool_max_threads: 1 },
    status: { port: 0 },
    log: { format: 'json', level: 'info' },
    devnet: { enabled: true, block_time_ms: o.blockMs, validators: o.validators, miners: o.miners, cycles: o.cycles },
  };
}

/** Marker substrings of the miner log lines the narration follows. */
const MINER_MARKERS = [
  '<Distribute> downloaded model metadata',
  'failed validation',
  '<MinerCommit1> committing',
  '<MinerCommit2> committing',
  '<Submission> submitted model',
  'skipped this cycle',
  'window already over',
  'No validator assigned',
  'Updated model',
  'trainer started',
  'restarting trainer',
  'owner phase service unreachable',
  'phase schedule from the owner',
  'rejected by the validator',
  'supervisor ready',
];

export async function runDevnet(opts: DevnetOptions): Promise<DevnetResult> {
  const out = opts.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const log = opts.logger;
  const nMiners = opts.miners ?? 1;
  const nValidators = opts.validators ?? 1;
  const cycles = opts.cycles ?? 1;
  const blockMs = opts.blockMs ?? DEVNET_BLOCK_MS;
  const lengths: PhaseLengths = { ...DEVNET_PHASES, ...opts.phases };
  const schedule = scheduleFromLengths(lengths);
  const L = schedule.cycleLength;
  const dir = resolve(opts.dir ?? (await mkdtemp(join(tmpdir(), 'connito-devnet-'))));
  await mkdir(dir, { recursive: true });
  const t0 = Date.now();
  const since = (): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const say = (l: string): void => out(`[${since()}] ${l}`);

  const cleanup: Array<() => Promise<void>> = [];
  let node: Devnode | null = null;
  let clock: BlockClock | null = null;
  let chain: ChainClient | null = null;
  let evaluator: Evaluator | null = null;
  const validators: DevValidator[] = [];
  const miners: DevnetMiner[] = [];
  let completed = 0;
  let aborted = false;
  const onAbort = (): void => {
    aborted = true;
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // Children in their own process groups must not outlive us, whatever happens.
  const killAll = (): void => {
    for (const m of miners) m.process.kill();
  };
  process.once('exit', killAll);

  try {
    say(`run directory ${dir}`);
    // ---- identities, model, genesis -----------------------------------------------------------
    const walletRoot = join(dir, 'wallets');
    const vWallets: DevWallet[] = [];
    const mWallets: DevWallet[] = [];
    for (let i = 0; i < nValidators; i++) vWallets.push(await writeDevWallet(walletRoot, `devnet-v${i + 1}`));
    for (let i = 0; i < nMiners; i++) mWallets.push(await writeDevWallet(walletRoot, `devnet-m${i + 1}`));
    const model = await prepareDevnetModel(dir, log);
    const genesis: GenesisInput = {
      netuid: 102,
      accounts: [...vWallets, ...mWallets].map((w) => ({ address: w.hotkey, free: '1000000000000000' })),
      neurons: [
        ...vWallets.map((w, i) => ({ hotkey: w.hotkey, coldkey: w.coldkey, stake: String(1_000_000_000_000 * (nValidators - i)), validatorPermit: true })),
        ...mWallets.map((w) => ({ hotkey: w.hotkey, coldkey: w.coldkey })),
      ],
    };
    await writeFile(join(dir, 'genesis.json'), JSON.stringify(genesis, null, 2) + '\n');
    node = await startDevnode({ genesis, blockMs: 0, allowLoopbackAxon: true, historyBlocks: 8192, logger: log.child({ component: 'devnode' }) });
    const n = node;
    clock = new BlockClock(n, blockMs);
    clock.start();
    const validatorHotkeys = vWallets.map((w) => w.hotkey);
    let owner: OwnerService | null = null;
    let ownerUrl: string;
    if (opts.faults?.ownerDown) {
      ownerUrl = `http://127.0.0.1:${await freePort()}`;
    } else {
      owner = await startOwnerService({ schedule, head: () => n.head().number, whitelist: () => validatorHotkeys, logger: log });
      ownerUrl = owner.url;
      cleanup.push(() => owner!.close());
    }
    say(
      `chain ${n.url} (subnet 102, ${blockMs} ms blocks) · owner phase service ${opts.faults?.ownerDown ? `${ownerUrl} (DOWN: miners fall back to config.yaml)` : ownerUrl}`,
    );
    say(`cycle of ${L} blocks: ${schedule.phases.map((p) => `${p.name} ${p.length}`).join(' · ')}`);

    // ---- validators ---------------------------------------------------------------------------
    evaluator = await Evaluator.create(model);
    const board = new MergeBoard(nValidators);
    const v0 = phaseRange(schedule, 0, 'MinerCommit1').start;
    const vc1 = phaseRange(schedule, 0, 'ValidatorCommit1').start;
    const validatorEvents: ValidatorEvent[] = [];
    const names = new Map<string, string>();
    for (const [i, w] of vWallets.entries()) names.set(w.hotkey, `v${i + 1}`);
    for (const [i, w] of mWallets.entries()) names.set(w.hotkey, `m${i + 1}`);
    const nameOf = (hk: string): string => names.get(hk) ?? short(hk);
    for (const [i, w] of vWallets.entries()) {
      const wallet: Wallet = await loadWallet({ path: walletRoot, name: w.name, hotkey: w.hotkeyName });
      const v = new DevValidator({
        name: `v${i + 1}`,
        wallet,
        chainUrl: n.url,
        schedule,
        model,
        evaluator,
        board,
        dir: join(dir, 'validators', `v${i + 1}`),
        validatorHotkeys: () => validatorHotkeys,
        blockTimeMs: blockMs,
        logger: log,
        activeFrom: vc1,
        onEvent: (e) => {
          validatorEvents.push(e);
          narrateValidator(e);
        },
      });
      await v.start(v0);
      validators.push(v);
      say(`validator v${i + 1} uid ${v.uid} ${w.hotkey} serving ${v.url} (global model v${v0}, hash ${short(v.current!.hash)})`);
    }
    cleanup.push(async () => {
      for (const v of validators) await v.stop();
    });

    chain = await ChainClient.connect({ url: n.url, logger: log.child({ component: 'orchestrator-chain' }), blockTimeMs: blockMs, callTimeoutMs: 10_000 });
    const ch = chain;
    const ctx: DevnetContext = { dir, node: n, clock, owner, ownerUrl, schedule, model, validators, miners, chain: ch, out: say };

    function narrateValidator(e: ValidatorEvent): void {
      switch (e.type) {
        case 'commit':
          if (e.phase === 'ValidatorCommit2') say(`${e.validator} committed global model v${JSON.parse(e.payload).v} on chain (block ${e.block})`);
          break;
        case 'distributed':
          say(`${e.validator} sent v${e.version} to ${nameOf(e.miner)}${e.tampered ? ' (TAMPERED copy: fault injection)' : ''}`);
          break;
        case 'submission':
          say(
            e.accepted
              ? `${e.validator} ACCEPTED ${nameOf(e.miner)}'s checkpoint (signature and hash checked against its commits; block ${e.block})`
              : `${e.validator} refused a submission from ${nameOf(e.miner)}: HTTP ${e.status} ${e.detail}`,
          );
          break;
        case 'evaluated':
          say(
            `${e.validator} evaluated cycle ${e.cycle}: baseline v${e.version} loss ${fmt(e.baseline)}` +
              (e.results.length ? `; ${e.results.map((r) => `${nameOf(r.miner)} ${fmt(r.loss)}`).join(', ')}` : '; no submissions'),
          );
          break;
        case 'merged':
          say(`${e.validator} merged ${e.miners.map(nameOf).join(', ')} → global model v${e.version} (hash ${short(e.hash)})`);
          break;
        case 'error':
          say(`${e.validator} error in ${e.what}: ${e.err}`);
          break;
      }
    }

    // ---- bootstrap cycle 0: fast to ValidatorCommit1, the miners start -------------------------
    clock.fastForward(vc1 - 1, 10);
    await clock.waitFor(vc1 - 1, opts.signal);
    clock.hold(L - 1);
    for (const [i, w] of mWallets.entries()) {
      const name = `m${i + 1}`;
      const mdir = join(dir, 'miners', name);
      await createConfigFile(
        mdir,
        devnetMinerConfig({ name, wallet: w, walletRoot, chainUrl: n.url, ownerUrl, model, schedule: lengths, blockMs, index: i, validators: nValidators, miners: nMiners, cycles }),
      );
      const m: DevnetMiner = {
        name,
        dir: mdir,
        wallet: w,
        seen: new Map(),
        process: new MinerProcess({ name, dir: mdir, bin: CLI_BIN, markers: MINER_MARKERS, onLine: (l) => narrateMiner(m, l), ...(opts.minerEnv ? { env: opts.minerEnv } : {}) }),
      };
      miners.push(m);
    }
    const cycleOf = (m: DevnetMiner, c: number): MinerCycle => {
      let s = m.seen.get(c);
      if (!s) m.seen.set(c, (s = { downloaded: null, reloaded: null, commit1: null, commit2: null, commitsVerified: false, submitted: null }));
      return s;
    };
    const nowCycle = (): number => Math.floor(n.head().number / L);
    function narrateMiner(m: DevnetMiner, l: Record<string, unknown>): void {
      const msg = String(l.msg ?? '');
      const c = nowCycle();
      if (msg.startsWith('<Distribute> downloaded model metadata')) {
        cycleOf(m, c).downloaded = { version: Number(l.global_ver), hash: String(l.model_hash), validator: String(l.hotkey) };
        say(`${m.name} downloaded and verified baseline v${l.global_ver} from ${nameOf(String(l.hotkey))} (hash ${short(String(l.model_hash))})`);
      } else if (msg.includes('failed validation')) {
        say(`${m.name} REJECTED a downloaded baseline: ${String(l.reason ?? '')}`);
      } else if (msg === 'Updated model') {
        const meta = l.current_model_meta as { global_ver?: number } | undefined;
        cycleOf(m, c).reloaded = meta?.global_ver ?? null;
        say(`${m.name} trainer reloaded the baseline (now training v${meta?.global_ver})`);
      } else if (msg === '<MinerCommit1> committing' || msg === '<MinerCommit2> committing') {
        say(`${m.name} ${msg.slice(1, 13)}: committing hash ${short(String(l.hash))} (model v${l.model_version}, step ${l.inner_opt})`);
      } else if (msg === '<Submission> submitted model') {
        const dest = Array.isArray(l.destination) ? String(l.destination[0]) : String(l.destination);
        cycleOf(m, c).submitted = { destination: dest, block: Number(l.block) };
        say(`${m.name} submitted its committed checkpoint to ${nameOf(dest)} (block ${l.block}, attempt ${l.attempt})`);
      } else if (msg === 'restarting trainer' || msg.startsWith('restarting trainer')) {
        say(`${m.name} trainer died (${String(l.reason ?? l.code ?? '?')}): the supervisor restarts it`);
      } else if (msg === 'trainer started' && Number(l.restarts) > 0) {
        say(`${m.name} trainer restarted (pid ${l.trainer_pid})`);
      } else if (msg.startsWith('owner phase service unreachable')) {
        say(`${m.name} cannot reach the owner phase service: using the phase lengths of its config.yaml`);
      } else if (msg.includes('skipped this cycle') || msg.includes('window already over') || msg.includes('No validator assigned') || msg.includes('rejected by the validator')) {
        say(`${m.name}: ${msg}`);
      }
    }

    say(`cycle 0 (bootstrap) at block ${n.head().number}: validators publish v${v0}; starting ${nMiners} miner(s) (connito-miner start)`);
    for (const m of miners) {
      m.process.start();
      say(`${m.name} uid ${nValidators + miners.indexOf(m)} ${m.wallet.hotkey} started (pid ${m.process.child?.pid}, logs ${m.process.logFile})`);
    }
    cleanup.push(async () => {
      await Promise.all(miners.map((m) => m.process.stop(45_000)));
    });

    // Trainers yield the CPU to chain duties (a 2-core machine runs everything here).
    const reniced = new Set<number>();
    const renice = async (): Promise<void> => {
      for (const m of miners) {
        const st = await m.process.status();
        const pid = st?.trainer?.pid;
        if (typeof pid === 'number' && !reniced.has(pid)) {
          try {
            setPriority(pid, 10);
            reniced.add(pid);
          } catch {
            /* it may have just exited */
          }
        }
      }
    };
    const reniceTimer = setInterval(() => void renice(), 1_000);
    cleanup.push(async () => clearInterval(reniceTimer));

    // Hold on the last block of cycle 0 until every miner's supervisor is ready and its clock runs.
    await clock.waitFor(L - 1, opts.signal);
    const readyBy = Date.now() + 90_000;
    for (;;) {
      if (aborted) throw new Error('stopped');
      const st = await Promise.all(miners.map((m) => m.process.status()));
      const dead = miners.find((m) => !m.process.running);
      if (dead) throw new Error(`miner ${dead.name} exited during start-up (see ${dead.process.logFile})`);
      if (st.every((s) => s?.ready === true && s.phase != null)) break;
      if (Date.now() > readyBy) throw new Error(`miners not ready after 90 s: ${miners.filter((_, i) => !(st[i]?.ready && st[i]?.phase)).map((m) => m.name).join(', ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await renice();
    await opts.hooks?.minersReady?.(ctx);
    say(`all miners up; cycle 1 starts at block ${L}`);

    // ---- cycles ----------------------------------------------------------------------------------
    let lastPhase = '';
    const phaseWork: Array<Promise<void>> = [];
    const offHead = ch.onHead((h) => {
      const p = phaseAt(schedule, h.number);
      const key = `${p.cycle_index}:${p.phase_name}`;
      if (key === lastPhase || p.cycle_index < 1) return;
      lastPhase = key;
      say(`block ${h.number} · cycle ${p.cycle_index} · ${p.phase_name}`);
      if (p.phase_name === 'Submission') phaseWork.push(checkCommits(p.cycle_index));
      const hook = opts.hooks?.phase?.(ctx, p.phase_name, p.cycle_index, h.number);
      if (hook) phaseWork.push(Promise.resolve(hook).catch((e: unknown) => say(`hook failed: ${(e as Error).message}`)));
    });
    cleanup.push(async () => {
      offHead();
    });

    /** Reads both miner commits of cycle `c` back from the chain at the snapshot blocks. */
    async function checkCommits(c: number): Promise<void> {
      const b1 = phaseRange(schedule, c, 'MinerCommit1').end + 1;
      const b2 = phaseRange(schedule, c, 'MinerCommit2').end + 1;
      try {
        const [s1, s2] = await Promise.all([ch.allCommitments({ block: b1 }), ch.allCommitments({ block: b2 })]);
        for (const m of miners) {
          const r1 = s1.commitments.find((r) => r.hotkey === m.wallet.hotkey);
          const r2 = s2.commitments.find((r) => r.hotkey === m.wallet.hotkey);
          const d1 = r1 ? decodeCommitment(r1, decodeSignatureCommit) : null;
          const d2 = r2 ? decodeCommitment(r2, (x) => decodeMinerCommit(x)) : null;
          const mc = cycleOf(m, c);
          if (d1?.ok && r1) mc.commit1 = { block: r1.block, payload: r1.data! };
          if (d2?.ok && r2 && d2.payload.h !== null) mc.commit2 = { block: r2.block, payload: r2.data!, version: d2.payload.v ?? -1, hash: d2.payload.h };
          const inWindow =
            mc.commit1 !== null && mc.commit2 !== null && mc.commit1.block <= b1 && mc.commit1.block >= phaseRange(schedule, c, 'MinerCommit1').start && mc.commit2.block <= b2 && mc.commit2.block > b1;
          mc.commitsVerified =
            inWindow && d1!.ok && typeof d1!.payload.m === 'string' && verifyModelHash(m.wallet.hotkey, mc.commit2!.hash, d1!.payload.m);
          say(
            mc.commitsVerified
              ? `${m.name} commits on chain: MinerCommit1 block ${mc.commit1!.block} (signed hash verifies), MinerCommit2 block ${mc.commit2!.block} (v${mc.commit2!.version}, hash ${short(mc.commit2!.hash)})`
              : `${m.name} commits on chain for cycle ${c}: MISSING or invalid (MinerCommit1 ${mc.commit1?.block ?? '-'}, MinerCommit2 ${mc.commit2?.block ?? '-'})`,
          );
        }
      } catch (e) {
        say(`cannot read the commits of cycle ${c}: ${(e as Error).message}`);
      }
    }

    clock.hold(null);
    const lastBlock = cycles > 0 ? (cycles + 1) * L : Number.MAX_SAFE_INTEGER;
    const cycleLoop = (async () => {
      for (let c = 1; c <= (cycles > 0 ? cycles : Number.MAX_SAFE_INTEGER); c++) {
        await clock!.waitFor((c + 1) * L, opts.signal);
        completed = c;
        const ms = miners.filter((m) => !m.process.running);
        if (ms.length > 0) say(`miner(s) ${ms.map((m) => m.name).join(', ')} exited early`);
      }
    })();
    try {
      await cycleLoop;
    } catch {
      /* aborted */
    }
    await Promise.all(phaseWork);
    if (!aborted && n.head().number >= lastBlock) await opts.hooks?.beforeStop?.(ctx);
    return finish();
  } catch (e) {
    if (!aborted) say(`devnet failed: ${(e as Error).message}`);
    return finish(e);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }

  async function finish(err?: unknown): Promise<DevnetResult> {
    say(aborted ? 'stopping (interrupted)…' : 'stopping…');
    clock?.hold(null);
    for (const f of cleanup.reverse()) {
      try {
        await f();
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'devnet clean-up step failed');
      }
    }
    const codes = miners.map((m) => m.process.exit);
    const exits = await Promise.all(codes);
    for (const [i, x] of exits.entries()) {
      if (miners[i]!.process.child !== null && x.code !== 0) say(`${miners[i]!.name} exited with ${x.code ?? x.signal}`);
    }
    await chain?.close().catch(() => undefined);
    evaluator?.dispose();
    clock?.stop();
    await node?.stop().catch(() => undefined);
    process.off('exit', killAll);
    const summary = summarize();
    const ok = err === undefined && !aborted && summary.completed === summary.cycles && summary.accepted === summary.expected && summary.commits === summary.expected && exits.every((x) => x.code === 0);
    out(summary.line);
    return { code: aborted ? 130 : ok ? 0 : 1, dir, summary };
  }

  function summarize(): DevnetSummary {
    const v0 = validators[0];
    const versions = v0 ? [...v0.versions] : [];
    const evals = validators.flatMap((v) => v.evaluations);
    const first = evals.filter((e) => e.cycle === 1);
    const lastCycle = Math.max(1, completed);
    const last = evals.filter((e) => e.cycle === lastCycle);
    const mean = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
    const lossBefore = mean(first.map((e) => e.baseline).filter(Number.isFinite));
    const lossAfter = mean(last.flatMap((e) => e.results.map((r) => r.loss)).filter(Number.isFinite));
    const cyclesRun = cycles > 0 ? cycles : completed;
    let commits = 0;
    let accepted = 0;
    for (let c = 1; c <= completed; c++) {
      for (const m of miners) {
        if (m.seen.get(c)?.commitsVerified) commits++;
        if (validators.some((v) => v.accepted.some((a) => a.cycle === c && a.miner === m.wallet.hotkey))) accepted++;
      }
    }
    const expected = miners.length * cyclesRun;
    const line =
      `devnet summary: cycles=${completed}/${cyclesRun} miners=${nMiners} validators=${nValidators} ` +
      `versions=${versions.map((v) => `v${v}`).join('→') || 'none'} loss=${fmt(lossBefore)}→${fmt(lossAfter)} ` +
      `commits=${commits}/${expected} accepted=${accepted}/${expected}`;
    return { cycles: cyclesRun, completed, miners: nMiners, validators: nValidators, versions, lossBefore, lossAfter, commits, accepted, expected, line };
  }
}

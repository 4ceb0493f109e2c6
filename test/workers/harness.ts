// A small real subnet for the phase-duty tests: the devnode (JSON-RPC over loopback, real metadata,
// driven by a BlockClock), one devnet validator (real HTTP, chain commits, engine evaluation), the
// tiny model, and miner run directories with Bittensor wallets. The duty tasks run in this process
// through their real entry points (`run(payload, ctx)` of src/workers/*), as a pool thread runs them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadWallet } from '../../src/chain/wallet.js';
import { writeCheckpoint, expertFileName, ownCheckpointName } from '../../src/checkpoint/dir.js';
import { tensorFromValues, toFloat64Array, type StateDict } from '../../src/checkpoint/tensor.js';
import { createConfigFile, resolveRunDir } from '../../src/config/index.js';
import { BlockClock } from '../../src/devnet/block-clock.js';
import { startDevnode, type Devnode } from '../../src/devnet/chain/index.js';
import { Evaluator, prepareDevnetModel, type DevnetModel } from '../../src/devnet/model.js';
import { devnetMinerConfig } from '../../src/devnet/orchestrator.js';
import { DevValidator, MergeBoard } from '../../src/devnet/validator.js';
import { writeDevWallet, type DevWallet } from '../../src/devnet/wallets.js';
import { scheduleFromLengths, type PhaseLengths, type PhaseSchedule } from '../../src/protocol/phases.js';
import { dutyWindow, DUTY_SPECS, windowDeadline } from '../../src/supervisor/phase-plan.js';
import { createLogger, type Logger } from '../../src/telemetry/logger.js';
import type { TaskContext } from '../../src/workers/pool-entry.js';
import { closeRuntime, openRuntime, setWorkerLogDestination } from '../../src/workers/runtime.js';
import type { DutyName, DutyPayload } from '../../src/workers/task-protocol.js';

// Commit windows long enough for a task that opens its first chain connection on a loaded 2-core
// machine (metadata decode alone can take a second or two there).
export const PHASES: PhaseLengths = { distribute: 10, train: 16, commit: 24, submission: 24, validate: 4, merge: 4 };
export const BLOCK_MS = 150;

export interface HarnessMiner {
  name: string;
  dir: string;
  configFile: string;
  wallet: DevWallet;
}

export interface Harness {
  dir: string;
  node: Devnode;
  clock: BlockClock;
  schedule: PhaseSchedule;
  model: DevnetModel;
  validator: DevValidator;
  miners: HarnessMiner[];
  /** First global model version (MinerCommit1 start of cycle 0). */
  v0: number;
  /** JSON lines the tasks logged. */
  logs(): Array<Record<string, unknown>>;
  payload(miner: HarnessMiner, duty: DutyName, cycle: number): DutyPayload;
  ctx(payload: DutyPayload): TaskContext & { abort(): void };
  close(): Promise<void>;
}

/** A copy of `sd` with every value moved by `delta` (a different model with a different hash). */
export function shifted(sd: StateDict, delta: number): StateDict {
  const out: StateDict = new Map();
  for (const [k, t] of sd) out.set(k, tensorFromValues(t.dtype, t.shape, Array.from(toFloat64Array(t), (x) => x + delta)));
  return out;
}

/** Writes an own checkpoint `globalver_<G>_inneropt_<K>` as the trainer would. */
export async function writeOwnCheckpoint(minerDir: string, globalVer: number, innerOpt: number, experts: StateDict): Promise<void> {
  await writeCheckpoint(join(minerDir, 'checkpoints'), ownCheckpointName(globalVer, innerOpt), [{ file: expertFileName(0), stateDict: experts }], { expert_group: 0, base_version: globalVer });
}

export async function makeHarness(o: { miners: number; logger?: Logger }): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'cnm-duties-'));
  const log = o.logger ?? createLogger({ proc: 'test', json: true, destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const lines: string[] = [];
  setWorkerLogDestination(new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
  const walletRoot = join(dir, 'wallets');
  const vw = await writeDevWallet(walletRoot, 'devnet-v1');
  const mws: DevWallet[] = [];
  for (let i = 0; i < o.miners; i++) mws.push(await writeDevWallet(walletRoot, `devnet-m${i + 1}`));
  const model = await prepareDevnetModel(dir, log);
  const schedule = scheduleFromLengths(PHASES);
  const node = await startDevnode({
    genesis: {
      accounts: [vw, ...mws].map((w) => ({ address: w.hotkey, free: '1000000000000000' })),
      neurons: [{ hotkey: vw.hotkey, coldkey: vw.coldkey, stake: '1000000000000', validatorPermit: true }, ...mws.map((w) => ({ hotkey: w.hotkey, coldkey: w.coldkey }))],
    },
    blockMs: 0,
    allowLoopbackAxon: true,
    logger: log,
  });
  const clock = new BlockClock(node, BLOCK_MS);
  clock.start();
  const evaluator = await Evaluator.create(model, { batches: 2 });
  const v0 = dutyWindow(schedule, DUTY_SPECS[1]!, 0).start;
  const vc1 = schedule.phases.find((p) => p.name === 'ValidatorCommit1')!.offset;
  const validator = new DevValidator({
    name: 'v1',
    wallet: await loadWallet({ path: walletRoot, name: vw.name, hotkey: vw.hotkeyName }),
    chainUrl: node.url,
    schedule,
    model,
    evaluator,
    board: new MergeBoard(1),
    dir: join(dir, 'validator'),
    validatorHotkeys: () => [vw.hotkey],
    blockTimeMs: BLOCK_MS,
    activeFrom: vc1,
    logger: log,
  });
  await validator.start(v0);
  const miners: HarnessMiner[] = [];
  for (const [i, w] of mws.entries()) {
    const mdir = join(dir, 'miners', `m${i + 1}`);
    await createConfigFile(
      mdir,
      devnetMinerConfig({
        name: `m${i + 1}`,
        wallet: w,
        walletRoot,
        chainUrl: node.url,
        ownerUrl: 'http://127.0.0.1:9',
        model,
        schedule: PHASES,
        blockMs: BLOCK_MS,
        index: i,
        validators: 1,
        miners: o.miners,
        cycles: 1,
      }),
    );
    // A checkpoint this miner trained on an older global model (version 3).
    await writeOwnCheckpoint(mdir, 3, 5, shifted(model.groupExperts, 0.01 * (i + 1)));
    miners.push({ name: `m${i + 1}`, dir: mdir, configFile: resolveRunDir(mdir).configFile, wallet: w });
  }
  // Through the bootstrap cycle fast: the validator publishes v0 in ValidatorCommit1/2 of cycle 0.
  clock.fastForward(vc1 - 1, 5);
  const payloadFor = (m: HarnessMiner, duty: DutyName, cycle: number): DutyPayload => ({
    configFile: m.configFile,
    schedule: schedule.phases.map((p) => ({ name: p.name, length: p.length })),
    scheduleSource: 'owner',
    whitelist: [vw.hotkey],
    head: node.head().number,
    cycleIndex: cycle,
    window: dutyWindow(schedule, DUTY_SPECS.find((d) => d.duty === duty)!, cycle),
    blockTimeMs: BLOCK_MS,
  });
  // A running miner's pool thread is warm: its chain client connected during an earlier cycle.
  for (const m of miners) await (await openRuntime('download', payloadFor(m, 'download', 0))).chain.ready();
  return {
    dir,
    node,
    clock,
    schedule,
    model,
    validator,
    miners,
    v0,
    logs: () =>
      lines
        .join('')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    payload: payloadFor,
    ctx: (p) => {
      // The phase clock's estimate.
      const deadline = windowDeadline(Date.now(), node.head().number, p.window.deadline, BLOCK_MS);
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error('deadline reached')), Math.max(0, deadline - Date.now()));
      timer.unref();
      return { task: 'test', deadline, deadlineBlock: p.window.deadline, signal: controller.signal, timeLeft: () => deadline - Date.now(), abort: () => controller.abort(new Error('cancelled')) };
    },
    close: async () => {
      await closeRuntime();
      setWorkerLogDestination(null);
      await validator.stop();
      evaluator.dispose();
      clock.stop();
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

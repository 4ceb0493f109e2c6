// The phase clock (DESIGN "Time"): a supervisor plug-in that follows the chain head subscription,
// takes the phase schedule from the owner phase service (retries, timeouts, cached; refreshed once a
// cycle) or — when the service cannot be reached — from the config's locked lengths (logged), and
// at the start of Distribute, MinerCommit1 and Submission dispatches one task to the pool with the
// window's end (block and wall-clock estimate) as its deadline. The decisions themselves are pure
// (phase-plan.ts); this file does the I/O around them and keeps /status and the subnet_* metrics
// current.
import { ChainClient } from '../chain/client.js';
import { resolveNetworkUrl, type MinerConfig } from '../config/index.js';
import { phaseAt, scheduleFromLengths, type PhaseSchedule } from '../protocol/phases.js';
import type { Logger } from '../telemetry/logger.js';
import type { DutyName, DutyPayload, DutyResult } from '../workers/task-protocol.js';
import { OwnerApi } from './owner-api.js';
import { DUTY_SPECS, PhasePlanner, windowDeadline, type PlanAction } from './phase-plan.js';
import type { PluginContext, SupervisorPlugin } from './supervisor.js';

export type ScheduleSource = 'owner' | 'config';

export interface PhaseClockOptions {
  /** Absolute path of config.yaml (handed to the tasks). */
  configFile: string;
  /** Test hook: build the chain client. */
  createChain?: (url: string, logger: Logger) => ChainClient;
  /** Test hook: the fetch used for the owner service. */
  fetch?: typeof fetch;
}

/** The config's locked lengths as a schedule (the fallback when the owner service is unreachable). */
export function configSchedule(c: MinerConfig): PhaseSchedule {
  return scheduleFromLengths({
    distribute: c.cycle.distribute_period,
    train: c.cycle.train_period,
    commit: c.cycle.commit_period,
    submission: c.cycle.submission_period,
    validate: c.cycle.validate_period,
    merge: c.cycle.merge_period,
  });
}

function sameSchedule(a: PhaseSchedule, b: PhaseSchedule): boolean {
  return a.phases.length === b.phases.length && a.phases.every((p, i) => p.name === b.phases[i]!.name && p.length === b.phases[i]!.length);
}

function clockTime(ms: number): string {
  return new Date(ms).toTimeString().slice(0, 8);
}

export class PhaseClock implements SupervisorPlugin {
  readonly name = 'phase-clock';
  private ctx: PluginContext | null = null;
  private log: Logger | null = null;
  private chain: ChainClient | null = null;
  private owner: OwnerApi | null = null;
  private readonly controller = new AbortController();
  private readonly planner = new PhasePlanner();
  private schedule: PhaseSchedule | null = null;
  private source: ScheduleSource | null = null;
  private whitelist: string[] | null = null;
  private refreshing = false;
  private refreshedCycle = new Map<string, number>();
  private readonly intervals: number[] = [];
  private lastHead: { number: number; at: number } | null = null;
  private stopped = false;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(private readonly opts: PhaseClockOptions) {}

  start(ctx: PluginContext): void {
    this.ctx = ctx;
    const c = ctx.config;
    this.log = ctx.logger.child({ component: 'phase-clock' });
    this.owner = new OwnerApi({
      baseUrl: c.cycle.owner_url,
      timeoutMs: c.cycle.api_timeout_sec * 1000,
      retries: c.cycle.api_retries,
      backoffSec: c.cycle.api_backoff_sec,
      logger: this.log,
      signal: AbortSignal.any([ctx.signal, this.controller.signal]),
      ...(this.opts.fetch ? { fetch: this.opts.fetch } : {}),
    });
    const url = resolveNetworkUrl(c.chain.network);
    const chainLog = ctx.logger.child({ component: 'phase-clock-chain' });
    const bt = c.cycle.block_time_sec * 1000;
    this.chain =
      this.opts.createChain?.(url, chainLog) ??
      new ChainClient({
        url,
        netuid: c.chain.netuid,
        logger: chainLog,
        blockTimeMs: bt,
        reconnectDelayMs: Math.min(1_000, Math.max(100, bt)),
        maxReconnectDelayMs: Math.min(30_000, Math.max(1_000, 20 * bt)),
        metrics: { rpcError: () => ctx.metrics.chainRpcErrors.inc() },
      });
    this.chain.onHead((h) => this.onHead(h.number, h.seenAt));
    // Neither the chain nor the owner service may hold up the supervisor's start: both come up in
    // the background, and nothing is dispatched before the schedule is known.
    this.chain.ready().catch((e: unknown) => this.log?.warn({ url, err: (e as Error).message }, 'phase clock: chain not reachable yet; still trying'));
    void this.loadSchedule('start');
    this.log.info({ chain: url, owner_url: this.owner.baseUrl }, 'phase clock started');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.controller.abort(new Error('phase clock stopping'));
    await this.chain?.close().catch(() => undefined);
  }

  /** The schedule in effect and where it came from (tests, status). */
  current(): { schedule: PhaseSchedule | null; source: ScheduleSource | null; whitelist: string[] | null } {
    return { schedule: this.schedule, source: this.source, whitelist: this.whitelist };
  }

  /** Fetch the schedule and whitelist; keep a cached owner schedule on failure, else fall back. */
  private async loadSchedule(why: string): Promise<void> {
    if (this.refreshing || this.owner === null || this.ctx === null) return;
    this.refreshing = true;
    const c = this.ctx.config;
    try {
      const [schedule, whitelist] = await Promise.all([this.owner.schedule(), this.owner.whitelist()]);
      if (this.stopped) return;
      if (whitelist !== null) this.whitelist = whitelist;
      else if (this.whitelist === null) this.log?.warn({ owner_url: this.owner.baseUrl }, 'validator whitelist unavailable: validator permits on the metagraph stand in for it');
      if (schedule !== null) {
        if (this.source !== 'owner') this.log?.info({ cycle_length: schedule.cycleLength, phases: schedule.phases.map((p) => `${p.name}:${p.length}`), why }, 'phase schedule from the owner phase service');
        this.install(schedule, 'owner');
      } else if (this.source === null) {
        const fallback = configSchedule(c);
        this.log?.warn(
          { owner_url: this.owner.baseUrl, cycle_length: fallback.cycleLength, phases: fallback.phases.map((p) => `${p.name}:${p.length}`) },
          'owner phase service unreachable: using the phase lengths of config.yaml (cycle.*_period) until it answers',
        );
        this.install(fallback, 'config');
      } else {
        this.log?.debug({ source: this.source }, 'owner phase service did not answer; keeping the schedule in use');
      }
    } finally {
      this.refreshing = false;
    }
  }

  private install(schedule: PhaseSchedule, source: ScheduleSource): void {
    const changed = this.schedule === null || !sameSchedule(this.schedule, schedule);
    if (changed && this.schedule !== null) {
      this.log?.warn({ from: this.schedule.cycleLength, to: schedule.cycleLength, source }, 'phase schedule changed');
      this.planner.reset();
    }
    this.schedule = schedule;
    this.source = source;
    this.ctx?.recordOutcome('schedule', {
      ok: source === 'owner',
      detail: source === 'owner' ? `owner phase service (cycle ${schedule.cycleLength} blocks)` : `config.yaml fallback (cycle ${schedule.cycleLength} blocks): owner service unreachable`,
      source,
      cycleLength: schedule.cycleLength,
      whitelist: this.whitelist?.length ?? null,
    });
    if (this.lastHead !== null) this.onHead(this.lastHead.number, this.lastHead.at);
  }

  /** Block time for wall-clock estimates: the configured one, or the observed one when slower. */
  blockTimeMs(): number {
    const cfg = (this.ctx?.config.cycle.block_time_sec ?? 12) * 1000;
    if (this.intervals.length < 5) return cfg;
    const sorted = [...this.intervals].sort((a, b) => a - b);
    return Math.max(cfg, sorted[Math.floor(sorted.length / 2)]!);
  }

  private onHead(block: number, seenAt: number): void {
    const ctx = this.ctx;
    if (ctx === null || this.stopped) return;
    if (this.lastHead !== null && block > this.lastHead.number) {
      this.intervals.push((seenAt - this.lastHead.at) / (block - this.lastHead.number));
      if (this.intervals.length > 15) this.intervals.shift();
    }
    if (this.lastHead === null || block >= this.lastHead.number) this.lastHead = { number: block, at: seenAt };
    const s = this.schedule;
    if (s === null) {
      ctx.metrics.currentBlock.set(block);
      return;
    }
    const p = phaseAt(s, block);
    ctx.setPhase({ name: p.phase_name, index: p.phase_index, block, blocksRemaining: p.blocks_remaining_in_phase });
    // Refresh the owner's answers a few phases before the duties that use them.
    if (p.phase_name === 'ValidatorCommit1' || p.phase_name === 'MinerCommit1') {
      if (this.refreshedCycle.get(p.phase_name) !== p.cycle_index) {
        this.refreshedCycle.set(p.phase_name, p.cycle_index);
        void this.loadSchedule(`refresh at ${p.phase_name}`);
      }
    }
    for (const a of this.planner.onHead(s, block)) this.act(a, block, seenAt, s);
  }

  private act(a: PlanAction, block: number, seenAt: number, s: PhaseSchedule): void {
    const log = this.log!;
    const bt = this.blockTimeMs();
    switch (a.kind) {
      case 'announce':
        log.info({ phase: a.phase, blocks: a.blocksUntil, start_block: a.startBlock }, `<${a.phase}> to begin in ${a.blocksUntil} blocks, at ${clockTime(seenAt + a.blocksUntil * bt)}`);
        return;
      case 'skip': {
        const detail =
          a.reason === 'busy'
            ? `the previous ${a.duty} task is still running at block ${block}`
            : `window already over on arrival (block ${block}, start by ${a.window.startBy})`;
        log.warn({ duty: a.duty, block, window: a.window, reason: a.reason }, `<${a.phase}> skipped this cycle: ${detail}${a.duty === 'commit' ? ' — no late commit' : ''}`);
        this.ctx!.recordOutcome(a.duty, { ok: false, skipped: true, detail, cycle: a.cycleIndex, block });
        return;
      }
      case 'dispatch':
        log.info(
          { duty: a.duty, block, window: a.window, joined: a.joined },
          `<${a.phase}> has started, ${a.blocksPassed} blocks passed, ${a.blocksLeft} blocks left in phase.`,
        );
        this.dispatch(a.duty, a, block, seenAt, s, bt);
        return;
    }
  }

  private dispatch(duty: DutyName, a: Extract<PlanAction, { kind: 'dispatch' }>, block: number, seenAt: number, s: PhaseSchedule, bt: number): void {
    const ctx = this.ctx!;
    const payload: DutyPayload = {
      configFile: this.opts.configFile,
      schedule: s.phases.map((p) => ({ name: p.name, length: p.length })),
      scheduleSource: this.source ?? 'config',
      whitelist: this.whitelist,
      head: block,
      cycleIndex: a.cycleIndex,
      window: a.window,
      blockTimeMs: bt,
    };
    const deadline = windowDeadline(seenAt, block, a.window.deadline, bt);
    this.planner.setRunning(duty, true);
    const started = Date.now();
    const p = ctx
      .dispatch(duty, payload, { deadline, deadlineBlock: a.window.deadline })
      .then(
        (r) => {
          const res = r as DutyResult;
          ctx.recordOutcome(duty, { ok: res.ok === true, skipped: res.skipped === true, detail: String(res.detail ?? ''), cycle: a.cycleIndex, durationMs: Date.now() - started });
        },
        (e: unknown) => {
          const err = e as Error & { code?: string };
          // At shutdown the pool cancels running tasks: that is expected, not an error.
          if (this.stopped) this.log?.info({ duty, code: err.code, err: err.message }, `${duty} task stopped with the supervisor`);
          else this.log?.error({ duty, code: err.code, err: err.message, cycle: a.cycleIndex }, `${duty} task ended with an error`);
          ctx.recordOutcome(duty, { ok: false, detail: err.message, code: err.code, cycle: a.cycleIndex, durationMs: Date.now() - started });
        },
      )
      .finally(() => {
        this.planner.setRunning(duty, false);
        this.inflight.delete(p);
      });
    this.inflight.add(p);
  }
}

/** The duties the clock dispatches (for the supervisor's task-module table). */
export const CLOCK_DUTIES: readonly DutyName[] = DUTY_SPECS.map((d) => d.duty);

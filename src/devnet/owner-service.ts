// The subnet owner's phase service for a devnet (PROTOCOL.md §1.4): the reference endpoints with the
// reference shapes, computed from a schedule and the devnode's head. Short phases, same math.
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { blocksUntilNextPhase, phaseAt, previousPhaseRanges, type PhaseSchedule } from '../protocol/phases.js';
import type { Logger } from '../telemetry/logger.js';

export interface OwnerServiceOptions {
  schedule: PhaseSchedule;
  /** The chain head (the reference reads it from subtensor on every request). */
  head: () => number;
  /** `/get_validator_whitelist`: read on every request, as the reference reads its file. */
  whitelist: () => string[];
  initPeers?: string[];
  logger?: Logger;
}

/** Fault injection for tests: the next `count` requests are answered with `status`. */
export interface OwnerServiceFaults {
  failNext(count: number, status?: number): void;
  /** Requests served so far, by path. */
  requests(): ReadonlyMap<string, number>;
}

export function buildOwnerService(o: OwnerServiceOptions): FastifyInstance & { faults: OwnerServiceFaults } {
  const app = Fastify({ ...(o.logger ? { loggerInstance: o.logger.child({ component: 'owner-service' }) } : {}), logController: new LogController({ disableRequestLogging: true }) });
  const s = o.schedule;
  let fail = { count: 0, status: 500 };
  const seen = new Map<string, number>();
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0]!;
    seen.set(path, (seen.get(path) ?? 0) + 1);
    if (fail.count > 0) {
      fail.count -= 1;
      return reply.code(fail.status).send({ detail: 'injected failure (devnet fault)' });
    }
    return undefined;
  });
  const head = (): number => {
    const b = o.head();
    // The reference raises RuntimeError for a negative block: a 500.
    if (!Number.isSafeInteger(b) || b < 0) throw new Error(`invalid chain head ${b}`);
    return b;
  };
  app.get('/', async () => ({
    message: 'Phase service is running',
    cycle_length: s.cycleLength,
    phases: s.phases.map((p) => ({ index: p.index, name: p.name, length: p.length })),
    usage: 'GET /phase?block_height=123',
  }));
  app.get('/get_phase', async () => phaseAt(s, head()));
  app.get('/blocks_until_next_phase', async () => blocksUntilNextPhase(s, head()));
  app.get('/previous_phase_blocks', async () => previousPhaseRanges(s, head()));
  app.get('/get_validator_whitelist', async () => o.whitelist());
  app.get('/get_init_peer_id', async () => o.initPeers ?? []);
  const faults: OwnerServiceFaults = {
    failNext: (count, status = 500) => {
      fail = { count, status };
    },
    requests: () => seen,
  };
  return Object.assign(app as unknown as FastifyInstance, { faults });
}

export interface OwnerService {
  url: string;
  app: FastifyInstance;
  faults: OwnerServiceFaults;
  close(): Promise<void>;
}

export async function startOwnerService(o: OwnerServiceOptions & { host?: string; port?: number }): Promise<OwnerService> {
  const app = buildOwnerService(o);
  await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 0 });
  const addr = app.server.address() as AddressInfo;
  return { url: `http://${addr.address}:${addr.port}`, app, faults: app.faults, close: () => app.close() };
}

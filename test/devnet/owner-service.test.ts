// The devnet owner phase service answers with the reference endpoints and shapes (PROTOCOL.md §1.4),
// checked against the golden vectors of the reference PhaseManager (test/fixtures/vectors/phases.json),
// and the owner-API client (src/supervisor/owner-api.ts) follows the reference retry policy (§1.5)
// against it over real loopback HTTP.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOwnerService, type OwnerService } from '../../src/devnet/owner-service.js';
import { scheduleFromPhases } from '../../src/protocol/phases.js';
import { OwnerApi } from '../../src/supervisor/owner-api.js';

interface PhaseCase {
  block: number;
  get_phase: Record<string, unknown>;
  blocks_until_next_phase: Record<string, number[]>;
  previous_phase_blocks: Record<string, number[]>;
}
const vectors = JSON.parse(readFileSync(new URL('../fixtures/vectors/phases.json', import.meta.url), 'utf8')) as Record<
  string,
  { phases: Array<{ name: string; length: number }>; cycle_length: number; cases: PhaseCase[] }
>;

describe('owner phase service (devnet)', () => {
  for (const [name, v] of Object.entries(vectors)) {
    it(`serves the reference answers for the ${name} schedule`, async () => {
      let head = 0;
      const svc = await startOwnerService({ schedule: scheduleFromPhases(v.phases), head: () => head, whitelist: () => ['5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY'] });
      try {
        const root = (await (await fetch(`${svc.url}/`)).json()) as { cycle_length: number; phases: unknown[]; message: string };
        expect(root.message).toBe('Phase service is running');
        expect(root.cycle_length).toBe(v.cycle_length);
        expect(root.phases).toEqual(v.phases.map((p, index) => ({ index, name: p.name, length: p.length })));
        for (const c of v.cases) {
          head = c.block;
          expect(await (await fetch(`${svc.url}/get_phase`)).json()).toEqual(c.get_phase);
          const until = (await (await fetch(`${svc.url}/blocks_until_next_phase`)).json()) as Record<string, number[]>;
          expect(until).toEqual(c.blocks_until_next_phase);
          expect(Object.keys(until)).toEqual(v.phases.map((p) => p.name)); // phase order, as the reference dict
          expect(await (await fetch(`${svc.url}/previous_phase_blocks`)).json()).toEqual(c.previous_phase_blocks);
        }
        expect(await (await fetch(`${svc.url}/get_validator_whitelist`)).json()).toEqual(['5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY']);
        expect(await (await fetch(`${svc.url}/get_init_peer_id`)).json()).toEqual([]);
      } finally {
        await svc.close();
      }
    });
  }
});

describe('owner API client: reference retry policy over loopback', () => {
  let svc: OwnerService;
  const schedule = scheduleFromPhases(vectors.cbf3c65_defaults!.phases);
  beforeAll(async () => {
    svc = await startOwnerService({ schedule, head: () => 100, whitelist: () => ['5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY', 'not-an-address'] });
  });
  afterAll(async () => svc.close());

  const api = (retries: number, timeoutMs = 2000) => new OwnerApi({ baseUrl: `${svc.url}/`, timeoutMs, retries, backoffSec: 0.05 });

  it('retries a 500 and gets the schedule', async () => {
    const before = svc.faults.requests().get('/') ?? 0;
    svc.faults.failNext(2, 500);
    const s = await api(3).schedule();
    expect(s?.cycleLength).toBe(472);
    expect(s?.phases.map((p) => p.length)).toEqual(schedule.phases.map((p) => p.length));
    expect((svc.faults.requests().get('/') ?? 0) - before).toBe(3);
  });

  it('a final status (404) is not retried; exhausting the attempts returns null', async () => {
    const before = svc.faults.requests().get('/') ?? 0;
    svc.faults.failNext(1, 404);
    expect(await api(3).schedule()).toBeNull();
    expect((svc.faults.requests().get('/') ?? 0) - before).toBe(1);
    svc.faults.failNext(5, 503);
    expect(await api(2).schedule()).toBeNull();
    expect((svc.faults.requests().get('/') ?? 0) - before).toBe(1 + 3);
    svc.faults.failNext(0);
  });

  it('drops invalid whitelist entries; an unreachable service gives null', async () => {
    expect(await api(0).whitelist()).toEqual(['5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY']);
    const dead = new OwnerApi({ baseUrl: 'http://127.0.0.1:9', timeoutMs: 500, retries: 1, backoffSec: 0.05 });
    const t0 = Date.now();
    expect(await dead.schedule()).toBeNull();
    expect(await dead.whitelist()).toBeNull();
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

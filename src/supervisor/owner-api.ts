// Client of the subnet owner's phase service (PROTOCOL.md §1.4–1.5): plain GETs with the reference's
// retry policy (`_get_with_retry`: retries+1 attempts, sleep backoff^attempt s between them, the
// 4xx of §1.6 are final, a timeout per attempt). Failures return null, never throw: the phase clock
// then keeps what it has or falls back to the config's lengths.
import { scheduleFromOwnerRoot, type PhaseSchedule } from '../protocol/phases.js';
import { isValidSs58 } from '../protocol/ss58.js';
import type { Logger } from '../telemetry/logger.js';

const FINAL_STATUSES = new Set([400, 401, 403, 404, 405, 409, 422]);

export interface OwnerApiOptions {
  /** config `cycle.owner_url`. */
  baseUrl: string;
  timeoutMs: number;
  /** Extra attempts after the first (config `cycle.api_retries`). */
  retries: number;
  /** Sleep base: backoff^attempt seconds (config `cycle.api_backoff_sec`). */
  backoffSec: number;
  logger?: Logger;
  /** Aborts retries and requests (shutdown). */
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    t.unref();
    const stop = (): void => {
      clearTimeout(t);
      resolve();
    };
    signal?.addEventListener('abort', stop, { once: true });
  });
}

export class OwnerApi {
  readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;

  constructor(private readonly o: OwnerApiOptions) {
    this.baseUrl = o.baseUrl.replace(/\/+$/, '');
    this.fetchFn = o.fetch ?? fetch;
  }

  /** `_get_with_retry(url)`: the parsed JSON, or null after the attempts are spent. */
  async get(path: string): Promise<unknown | null> {
    const url = `${this.baseUrl}${path}`;
    const attempts = this.o.retries + 1;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (this.o.signal?.aborted) return null;
      const last = attempt === attempts;
      try {
        const timeout = AbortSignal.timeout(Math.max(1, this.o.timeoutMs));
        const signal = this.o.signal ? AbortSignal.any([this.o.signal, timeout]) : timeout;
        const res = await this.fetchFn(url, { signal, headers: { accept: 'application/json' } });
        if (res.status >= 400) {
          const body = (await res.text().catch(() => '')).slice(0, 200);
          if (FINAL_STATUSES.has(res.status) || last) {
            this.o.logger?.warn({ url, status: res.status, body, attempt }, 'owner phase service refused the request');
            return null;
          }
          this.o.logger?.debug({ url, status: res.status, attempt }, 'owner phase service error; retrying');
        } else {
          return (await res.json()) as unknown;
        }
      } catch (e) {
        if (this.o.signal?.aborted) return null;
        const err = (e as Error).name === 'TimeoutError' ? `no answer within ${this.o.timeoutMs} ms` : ((e as { cause?: Error }).cause?.message ?? (e as Error).message);
        if (last) {
          this.o.logger?.warn({ url, attempts, err }, 'owner phase service unreachable');
          return null;
        }
        this.o.logger?.debug({ url, attempt, err }, 'owner phase service request failed; retrying');
      }
      await pause(1000 * this.o.backoffSec ** attempt, this.o.signal);
    }
    return null;
  }

  /** The schedule from `GET /` (phase order and lengths), or null. */
  async schedule(): Promise<PhaseSchedule | null> {
    const json = await this.get('/');
    if (json === null) return null;
    try {
      return scheduleFromOwnerRoot(json);
    } catch (e) {
      this.o.logger?.warn({ url: `${this.baseUrl}/`, err: (e as Error).message }, 'owner phase service sent an unusable schedule');
      return null;
    }
  }

  /** `GET /get_validator_whitelist`: SS58 hotkeys, or null (invalid entries are dropped). */
  async whitelist(): Promise<string[] | null> {
    const json = await this.get('/get_validator_whitelist');
    if (!Array.isArray(json)) return null;
    return json.filter((x): x is string => typeof x === 'string' && isValidSs58(x));
  }
}

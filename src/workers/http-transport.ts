// The cbf3c65 wire protocol (PROTOCOL.md §5.1, §6.3): `GET /get-checkpoint` with a signed
// urlencoded body (yes, a GET with a body — hence node:http, fetch refuses one) streamed to disk,
// and `POST /submit-checkpoint` as multipart streamed from disk. Memory stays bounded by the
// stream buffers whatever the file size. Each call is one attempt; retry policy is the caller's.
import { createReadStream, createWriteStream } from 'node:fs';
import { stat, truncate } from 'node:fs/promises';
import http from 'node:http';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { buildDownloadBody, buildDownloadFields, buildSubmitFields, buildSubmitMultipart } from '../protocol/requests.js';
import {
  NON_RETRYABLE_STATUSES,
  type CheckpointTransport,
  type FetchRequest,
  type FetchResult,
  type SubmitRequest,
  type SubmitResult,
} from './transport.js';

const MAX_RESPONSE_TEXT = 64 * 1024;

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

function readText(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    res.on('data', (c: Buffer) => {
      if (n < MAX_RESPONSE_TEXT) chunks.push(c.subarray(0, MAX_RESPONSE_TEXT - n));
      n += c.length;
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function detailOf(text: string): string {
  try {
    const j = JSON.parse(text) as { detail?: unknown };
    if (typeof j.detail === 'string') return j.detail;
  } catch {
    /* not JSON */
  }
  return text.slice(0, 300);
}

/** `Content-Range: bytes <start>-<end>/<total>` → start and total. */
function contentRange(h: string | undefined): { start: number; total: number | null } | null {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(h ?? '');
  if (!m) return null;
  return { start: Number(m[1]), total: m[2] === '*' ? null : Number(m[2]) };
}

function hostOf(ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip;
}

export class HttpTransport implements CheckpointTransport {
  readonly name = 'http';

  async fetchBaseline(r: FetchRequest): Promise<FetchResult> {
    const have = await sizeOf(r.dest);
    const { body, headers } = buildDownloadBody(
      buildDownloadFields({ targetSs58: r.source.hotkey, originSs58: r.originHotkey, block: r.block, expertGroupId: r.expertGroup, sign: r.sign }),
    );
    const reqHeaders: Record<string, string> = { ...headers };
    if (have > 0) reqHeaders.Range = `bytes=${have}-`;
    let res: http.IncomingMessage;
    try {
      res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.request(
          { host: r.source.ip, port: r.source.port, method: 'GET', path: '/get-checkpoint', headers: reqHeaders, signal: r.signal, timeout: r.timeoutMs },
          resolve,
        );
        req.on('timeout', () => req.destroy(new Error(`no answer from ${hostOf(r.source.ip)}:${r.source.port} within ${r.timeoutMs} ms`)));
        req.on('error', reject);
        req.end(body);
      });
    } catch (e) {
      return { ok: false, final: false, reason: `GET /get-checkpoint failed: ${(e as Error).message}`, bytes: have };
    }
    const status = res.statusCode ?? 0;
    if (status === 416 && have > 0) {
      res.resume();
      return { ok: true, bytes: have, resumedFrom: have };
    }
    if (status !== 200 && status !== 206) {
      const text = await readText(res);
      // 401/403: the validator refuses us (the reference exits the process here, §13.2 #7).
      return { ok: false, final: status === 401 || status === 403, status, reason: `HTTP ${status}: ${detailOf(text)}`, bytes: have };
    }
    let offset = 0;
    let total: number | null = null;
    if (status === 206) {
      const cr = contentRange(res.headers['content-range']);
      if (cr === null || cr.start !== have) {
        res.resume();
        await truncate(r.dest, 0).catch(() => undefined);
        return { ok: false, final: false, status, reason: `unusable Content-Range ${JSON.stringify(res.headers['content-range'])} for a resume at ${have}`, bytes: 0 };
      }
      offset = have;
      total = cr.total;
    } else {
      const len = Number(res.headers['content-length']);
      total = Number.isFinite(len) ? len : null;
    }
    if (total !== null && total > r.maxBytes) {
      res.destroy();
      return { ok: false, final: true, status, reason: `the checkpoint is ${total} bytes, more than the ${r.maxBytes}-byte limit`, bytes: offset };
    }
    let bytes = offset;
    let lastReport = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        if (bytes > r.maxBytes) return cb(new Error(`the checkpoint exceeds the ${r.maxBytes}-byte limit`));
        const now = Date.now();
        if (r.onProgress && now - lastReport >= 1000) {
          lastReport = now;
          r.onProgress(bytes, total);
        }
        cb(null, chunk);
      },
    });
    try {
      await pipeline(res, meter, createWriteStream(r.dest, { flags: offset > 0 ? 'a' : 'w' }), { signal: r.signal });
    } catch (e) {
      return { ok: false, final: false, status, reason: `download interrupted after ${bytes} bytes: ${(e as Error).message}`, bytes };
    }
    if (!res.complete) return { ok: false, final: false, status, reason: `the connection closed after ${bytes} bytes`, bytes };
    if (total !== null && bytes !== total) return { ok: false, final: false, status, reason: `received ${bytes} bytes, expected ${total}`, bytes };
    r.onProgress?.(bytes, total);
    return { ok: true, bytes, resumedFrom: offset };
  }

  async submitCheckpoint(r: SubmitRequest): Promise<SubmitResult> {
    const fields = buildSubmitFields({ targetSs58: r.destination.hotkey, originSs58: r.originHotkey, block: r.block, modelHash: r.modelHash, sign: r.sign });
    const body = buildSubmitMultipart(fields, {
      name: r.file.name,
      size: r.file.size,
      open: () => createReadStream(r.file.path, { highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>,
    });
    const timeout = AbortSignal.timeout(Math.max(1, r.timeoutMs));
    const signal = AbortSignal.any([r.signal, timeout]);
    try {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        let answered = false;
        const req = http.request(
          { host: r.destination.ip, port: r.destination.port, method: 'POST', path: '/submit-checkpoint', headers: body.headers, signal },
          (response) => {
            answered = true;
            resolve(response);
          },
        );
        // A validator may answer (a rejection) and stop reading before the whole body is sent: the
        // answer wins over the failed write.
        req.on('error', (e) => {
          if (!answered) reject(e);
        });
        pipeline(Readable.from(body.stream()), req).catch((e: unknown) => {
          if (!answered) setTimeout(() => (answered ? undefined : req.destroy(e as Error)), 1_000).unref();
        });
      });
      const text = await readText(res);
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = { status: 'ok', http_status: status, text };
        }
        return { ok: true, status, body: parsed };
      }
      return { ok: false, final: NON_RETRYABLE_STATUSES.has(status), status, reason: `HTTP ${status}: ${detailOf(text)}` };
    } catch (e) {
      const why = timeout.aborted && !r.signal.aborted ? `no answer within ${r.timeoutMs} ms` : (e as Error).message;
      return { ok: false, final: false, reason: `POST /submit-checkpoint to ${hostOf(r.destination.ip)}:${r.destination.port} failed: ${why}` };
    }
  }
}

// How checkpoints travel between a miner and validators. The phase logic (download.ts, submit.ts)
// only talks to this interface, so the Hugging Face Hub flow of the later protocol (PROTOCOL.md
// §5.4, §6.6, decision 1) can be added as another implementation without touching it. The cbf3c65
// HTTP flow is `HttpTransport` (http-transport.ts).

/** A validator checkpoint the chain advertises (§2.3): where to fetch it and what it must hash to. */
export interface BaselineSource {
  hotkey: string;
  uid: number;
  ip: string;
  port: number;
  globalVer: number;
  modelHash: string;
}

export interface FetchRequest {
  source: BaselineSource;
  /** The miner hotkey (origin of the signed request). */
  originHotkey: string;
  expertGroup: number;
  /** Destination file; when it already holds bytes the transport may resume after them. */
  dest: string;
  /** Head block signed into the request (§4.4). */
  block: number;
  /** Signs a message with the miner hotkey: base64url-no-pad (protocol signMessage). */
  sign(message: Uint8Array): string;
  signal: AbortSignal;
  /** Refuse bodies larger than this. */
  maxBytes: number;
  /** Idle timeout of the connection (the reference uses 30 s). */
  timeoutMs: number;
  onProgress?(bytes: number, total: number | null): void;
}

export type FetchResult =
  | { ok: true; bytes: number; resumedFrom: number }
  | { ok: false; final: boolean; status?: number; reason: string; bytes: number };

export interface SubmitRequest {
  destination: { hotkey: string; ip: string; port: number };
  originHotkey: string;
  /** Head block signed into the request; the validator wants it inside the Submission window. */
  block: number;
  /** The raw 24-byte model hash (== the committed `h`). */
  modelHash: Uint8Array;
  /** The exact committed file; streamed from disk on every attempt. */
  file: { path: string; name: string; size: number };
  sign(message: Uint8Array): string;
  signal: AbortSignal;
  /** Whole-attempt timeout (the reference uses 300 s). */
  timeoutMs: number;
}

export type SubmitResult =
  | { ok: true; status: number; body: unknown }
  | { ok: false; final: boolean; status?: number; reason: string };

export interface CheckpointTransport {
  readonly name: string;
  /** One attempt to fetch a validator's checkpoint for our group into `dest`. */
  fetchBaseline(r: FetchRequest): Promise<FetchResult>;
  /** One attempt to submit our committed checkpoint. */
  submitCheckpoint(r: SubmitRequest): Promise<SubmitResult>;
}

/** Statuses the reference never retries (§1.6): the request itself is wrong. */
export const NON_RETRYABLE_STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 404, 405, 409, 422]);

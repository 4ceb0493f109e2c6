// From raw commitment strings to typed payloads. Parsing belongs to src/protocol (decodeMinerCommit,
// decodeValidatorCommit, decodeSignatureCommit); this helper runs one of them over a snapshot, keeps the
// storage-key order, and turns every unreadable entry into a `skipped` entry with a logged reason —
// garbage on chain never throws out of a read.

import type { CommitDecodeResult } from '../protocol/commits.js';
import type { Logger } from '../telemetry/logger.js';
import type { CommitmentRecord } from './types.js';

export type DecodedCommitment<T> =
  | { ok: true; hotkey: string; block: number; data: string; payload: T }
  | { ok: false; hotkey: string; block: number; data: string | null; reason: string };

/** A protocol decoder, e.g. `decodeMinerCommit` or `(s) => decodeMinerCommit(s, { head: true })`. */
export type CommitDecoder<T> = (data: string) => CommitDecodeResult<T>;

export interface DecodeCommitmentsOptions {
  logger?: Logger;
  /** Added to each log line (e.g. `{ phase: 'MinerCommit2', block }`). */
  context?: Record<string, unknown>;
}

export function decodeCommitment<T>(r: CommitmentRecord, decode: CommitDecoder<T>): DecodedCommitment<T> {
  if (r.data === null) {
    const reason = r.field === null ? 'commitment has no fields' : `first field is ${r.field}, not a Raw text field`;
    return { ok: false, hotkey: r.hotkey, block: r.block, data: null, reason };
  }
  let res: CommitDecodeResult<T>;
  try {
    res = decode(r.data);
  } catch (e) {
    // Decoders return errors; a throw is a bug there, but garbage must still not escape a chain read.
    res = { ok: false, error: e as never };
  }
  if (res.ok) return { ok: true, hotkey: r.hotkey, block: r.block, data: r.data, payload: res.value };
  const reason = (res.error as { message?: string } | undefined)?.message ?? String(res.error);
  return { ok: false, hotkey: r.hotkey, block: r.block, data: r.data, reason };
}

/** Decode every record in order; each skipped one is logged (warn) with its hotkey and reason. */
export function decodeCommitments<T>(
  records: readonly CommitmentRecord[],
  decode: CommitDecoder<T>,
  opts: DecodeCommitmentsOptions = {},
): Array<DecodedCommitment<T>> {
  return records.map((r) => {
    const d = decodeCommitment(r, decode);
    if (!d.ok) {
      opts.logger?.warn(
        { ...opts.context, hotkey: d.hotkey, commit_block: d.block, reason: d.reason },
        'skipping unreadable chain commitment',
      );
    }
    return d;
  });
}

/** Only the readable ones, in order. */
export function readableCommitments<T>(decoded: ReadonlyArray<DecodedCommitment<T>>): Array<Extract<DecodedCommitment<T>, { ok: true }>> {
  return decoded.filter((d): d is Extract<DecodedCommitment<T>, { ok: true }> => d.ok);
}

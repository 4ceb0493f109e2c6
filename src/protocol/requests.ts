// The two HTTP requests of the cbf3c65 wire protocol, built the way Python `requests`/urllib3 build
// them (PROTOCOL.md §5.1, §6.3): the submission's multipart body (fields in `to_dict()` order, then the
// file) streamed from a file source, and the download request's urlencoded body.
import { randomBytes } from 'node:crypto';
import { ProtocolError } from './errors.js';
import { toHex } from './hex.js';
import { blockMessage, downloadMessage, submissionMessage } from './signing.js';

/** The submission's text fields, in the order the reference sends them. */
export interface SubmitFields {
  target_hotkey_ss58: string;
  origin_hotkey_ss58: string;
  origin_block: number;
  /** sign_message(hotkey, model_raw24 ‖ block_message). */
  signature: string;
  /** hex of the 24-byte model hash (== the committed `h`). */
  model_hex: string;
  /** hex of construct_block_message(target, block) (80 characters). */
  block_hex: string;
}

export const SUBMIT_FIELD_ORDER = ['target_hotkey_ss58', 'origin_hotkey_ss58', 'origin_block', 'signature', 'model_hex', 'block_hex'] as const;

/**
 * Builds the submission fields; `sign` signs the 64-byte submission message (e.g.
 * `(m) => signMessage(pair, m)`), so the hotkey secret never has to reach this module.
 */
export function buildSubmitFields(a: {
  targetSs58: string;
  originSs58: string;
  block: number;
  modelHash: Uint8Array;
  sign: (message: Uint8Array) => string;
}): SubmitFields {
  if (a.modelHash.length !== 24) throw new ProtocolError('CNM_ERR_PROTOCOL_ARG', `model hash must be 24 bytes, got ${a.modelHash.length}`);
  return {
    target_hotkey_ss58: a.targetSs58,
    origin_hotkey_ss58: a.originSs58,
    origin_block: a.block,
    signature: a.sign(submissionMessage(a.modelHash, a.targetSs58, a.block)),
    model_hex: toHex(a.modelHash),
    block_hex: toHex(blockMessage(a.targetSs58, a.block)),
  };
}

/** urllib3 `choose_boundary()`: 32 random hex characters. */
export function randomBoundary(): string {
  return randomBytes(16).toString('hex');
}

/** urllib3 v2 `format_multipart_header_param` (HTML5 form encoding of `"`, CR, LF). */
function headerParam(name: string, value: string): string {
  return `${name}="${value.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22')}"`;
}

export interface MultipartFile {
  /** Base name sent as `filename` (the reference sends `model_expgroup_<g>.pt`). */
  name: string;
  /** Exact byte count; the stream must produce exactly this many bytes (Content-Length). */
  size: number;
  /** Opens a fresh stream of the file's bytes (called once per attempt). */
  open: () => AsyncIterable<Uint8Array>;
}

export interface MultipartBody {
  boundary: string;
  contentType: string;
  contentLength: number;
  /** Headers of the submission (`Authorization: Bearer ` with the empty token, as the reference). */
  headers: Record<string, string>;
  /** A fresh stream of the body; each call re-opens the file. Throws if the file size changed. */
  stream: () => AsyncGenerator<Uint8Array, void, undefined>;
}

/**
 * The `POST /submit-checkpoint` body: one part per field (`Content-Disposition: form-data;
 * name="<field>"`, no content type), then the file part, then the closing boundary.
 */
export function buildSubmitMultipart(fields: SubmitFields, file: MultipartFile, boundary = randomBoundary()): MultipartBody {
  if (!/^[0-9A-Za-z'()+_,\-./:=?]{1,70}$/.test(boundary)) throw new ProtocolError('CNM_ERR_PROTOCOL_ARG', `invalid multipart boundary ${JSON.stringify(boundary)}`);
  if (!Number.isSafeInteger(file.size) || file.size < 0) throw new ProtocolError('CNM_ERR_PROTOCOL_ARG', `invalid file size ${file.size}`);
  let head = '';
  for (const k of SUBMIT_FIELD_ORDER) {
    head += `--${boundary}\r\nContent-Disposition: form-data; ${headerParam('name', k)}\r\n\r\n${String(fields[k])}\r\n`;
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; ${headerParam('name', 'file')}; ${headerParam('filename', file.name)}\r\n\r\n`;
  const headBytes = new Uint8Array(Buffer.from(head, 'utf8'));
  const tailBytes = new Uint8Array(Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8'));
  const contentLength = headBytes.length + file.size + tailBytes.length;
  const contentType = `multipart/form-data; boundary=${boundary}`;
  return {
    boundary,
    contentType,
    contentLength,
    headers: { Authorization: 'Bearer ', 'Content-Type': contentType, 'Content-Length': String(contentLength) },
    stream: async function* () {
      yield headBytes;
      let n = 0;
      for await (const chunk of file.open()) {
        n += chunk.byteLength;
        if (n > file.size) throw new ProtocolError('CNM_ERR_PROTOCOL_ARG', `${file.name} grew while uploading (more than ${file.size} bytes)`);
        yield chunk;
      }
      if (n !== file.size) throw new ProtocolError('CNM_ERR_PROTOCOL_ARG', `${file.name} produced ${n} bytes, expected ${file.size}`);
      yield tailBytes;
    },
  };
}

/** Python `urllib.parse.quote_plus(s, safe='')`. */
export function quotePlus(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9_.~-]/.test(c)) out += c;
    else if (byte === 0x20) out += '+';
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export interface DownloadFields {
  target_hotkey_ss58: string;
  origin_hotkey_ss58: string;
  origin_block: number;
  /** sign_message(hotkey, construct_block_message(validator, block)). */
  signature: string;
  /** Omitted from the body when null. */
  expert_group_id: number | string | null;
}

export function buildDownloadFields(a: {
  targetSs58: string;
  originSs58: string;
  block: number;
  expertGroupId: number | string | null;
  sign: (message: Uint8Array) => string;
}): DownloadFields {
  return {
    target_hotkey_ss58: a.targetSs58,
    origin_hotkey_ss58: a.originSs58,
    origin_block: a.block,
    signature: a.sign(downloadMessage(a.targetSs58, a.block)),
    expert_group_id: a.expertGroupId,
  };
}

/** The `GET /get-checkpoint` body (`application/x-www-form-urlencoded`, fields in order). */
export function buildDownloadBody(f: DownloadFields): { body: string; headers: Record<string, string> } {
  const pairs: Array<[string, string]> = [
    ['target_hotkey_ss58', f.target_hotkey_ss58],
    ['origin_hotkey_ss58', f.origin_hotkey_ss58],
    ['origin_block', String(f.origin_block)],
    ['signature', f.signature],
  ];
  if (f.expert_group_id !== null) pairs.push(['expert_group_id', String(f.expert_group_id)]);
  const body = pairs.map(([k, v]) => `${quotePlus(k)}=${quotePlus(v)}`).join('&');
  return {
    body,
    headers: { 'Content-Length': String(Buffer.byteLength(body)), 'Content-Type': 'application/x-www-form-urlencoded' },
  };
}

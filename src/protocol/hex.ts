// Byte encodings used on the wire: lowercase hex (model hashes, block messages) and base64url without
// padding (signatures, as the reference's `sign_message`).
import { ProtocolError } from './errors.js';

const HEX = '0123456789abcdef';

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    s += HEX[b >> 4]! + HEX[b & 15]!;
  }
  return s;
}

/** Strict hex decode (even length, [0-9a-fA-F] only, no `0x`). */
export function fromHex(hex: string, expectedBytes?: number): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new ProtocolError('CNM_ERR_ENCODING', `not a hex string: ${JSON.stringify(hex.slice(0, 100))}`);
  }
  if (expectedBytes !== undefined && hex.length !== expectedBytes * 2) {
    throw new ProtocolError('CNM_ERR_ENCODING', `expected ${expectedBytes} bytes of hex, got ${hex.length / 2}`);
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** base64url (RFC 4648 §5) with every `=` removed: 64 bytes → 86 characters. */
export function base64UrlNoPad(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Strict inverse of base64UrlNoPad: rejects characters outside the url alphabet and bad lengths. */
export function fromBase64UrlNoPad(text: string): Uint8Array {
  const body = text.replace(/=+$/, '');
  if (!/^[A-Za-z0-9_-]*$/.test(body) || body.length % 4 === 1) {
    throw new ProtocolError('CNM_ERR_ENCODING', `not base64url: ${JSON.stringify(text.slice(0, 100))}`);
  }
  const out = new Uint8Array(Buffer.from(body, 'base64url'));
  // Non-canonical trailing bits would let two strings decode to the same bytes; refuse them.
  if (base64UrlNoPad(out) !== body) {
    throw new ProtocolError('CNM_ERR_ENCODING', `non-canonical base64url: ${JSON.stringify(text.slice(0, 100))}`);
  }
  return out;
}

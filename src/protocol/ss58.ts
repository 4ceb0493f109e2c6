// SS58 addresses (PROTOCOL.md §4.4): base58 (Bitcoin alphabet) of prefix ‖ 32-byte public key ‖
// checksum, checksum = BLAKE2b-512("SS58PRE" ‖ prefix ‖ pubkey)[0:2]. Bittensor uses prefix 42.
import { createHash } from 'node:crypto';
import { ProtocolError } from './errors.js';

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const INDEX = new Map([...ALPHABET].map((c, i) => [c, i]));
const SS58PRE = Buffer.from('SS58PRE', 'utf8');

export const BITTENSOR_SS58_PREFIX = 42;

function base58Decode(text: string): Uint8Array {
  const bytes: number[] = [];
  for (const ch of text) {
    const v = INDEX.get(ch);
    if (v === undefined) throw new ProtocolError('CNM_ERR_SS58', `invalid base58 character ${JSON.stringify(ch)} in address ${JSON.stringify(text)}`);
    let carry = v;
    for (let i = 0; i < bytes.length; i++) {
      carry += bytes[i]! * 58;
      bytes[i] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  for (const ch of text) {
    if (ch !== '1') break;
    bytes.push(0);
  }
  return new Uint8Array(bytes.reverse());
}

function base58Encode(data: Uint8Array): string {
  const digits: number[] = [];
  for (const byte of data) {
    let carry = byte;
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i]! << 8;
      digits[i] = carry % 58;
      carry = Math.floor(carry / 58);
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = Math.floor(carry / 58);
    }
  }
  let out = '';
  for (const byte of data) {
    if (byte !== 0) break;
    out += '1';
  }
  for (let i = digits.length - 1; i >= 0; i--) out += ALPHABET[digits[i]!];
  return out;
}

function checksum(prefixAndKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('blake2b512').update(SS58PRE).update(prefixAndKey).digest()).subarray(0, 2);
}

export interface Ss58Decoded {
  prefix: number;
  publicKey: Uint8Array;
  checksum: Uint8Array;
}

/** Decodes and checks an SS58 address holding a 32-byte public key (1- or 2-byte prefix). */
export function ss58Decode(address: string, expectedPrefix?: number): Ss58Decoded {
  if (typeof address !== 'string' || address.length === 0 || address.length > 64) {
    throw new ProtocolError('CNM_ERR_SS58', `not an SS58 address: ${JSON.stringify(String(address).slice(0, 80))}`);
  }
  const raw = base58Decode(address);
  let prefix: number;
  let prefixLen: number;
  if (raw.length > 0 && raw[0]! < 64) {
    prefix = raw[0]!;
    prefixLen = 1;
  } else if (raw.length > 1 && raw[0]! < 128) {
    // Two-byte form (prefixes 64..16383), as in the SS58 spec.
    prefix = ((raw[0]! & 0x3f) << 2) | (raw[1]! >> 6) | ((raw[1]! & 0x3f) << 8);
    prefixLen = 2;
  } else {
    throw new ProtocolError('CNM_ERR_SS58', `address ${address} has an invalid SS58 prefix`);
  }
  if (raw.length !== prefixLen + 32 + 2) {
    throw new ProtocolError('CNM_ERR_SS58', `address ${address} decodes to ${raw.length} bytes; expected ${prefixLen + 34} (32-byte public key)`);
  }
  const body = raw.subarray(0, prefixLen + 32);
  const sum = raw.subarray(prefixLen + 32);
  const want = checksum(body);
  if (sum[0] !== want[0] || sum[1] !== want[1]) {
    throw new ProtocolError('CNM_ERR_SS58', `address ${address} has a bad checksum (mistyped or truncated hotkey?)`);
  }
  if (expectedPrefix !== undefined && prefix !== expectedPrefix) {
    throw new ProtocolError('CNM_ERR_SS58', `address ${address} has SS58 prefix ${prefix}; expected ${expectedPrefix}`);
  }
  return { prefix, publicKey: raw.slice(prefixLen, prefixLen + 32), checksum: raw.slice(prefixLen + 32) };
}

/** The 32-byte public key of an SS58 address (checksum checked). */
export function ss58PublicKey(address: string): Uint8Array {
  return ss58Decode(address).publicKey;
}

/** Encodes a 32-byte public key (prefix 0..63 only; Bittensor's is 42). */
export function ss58Encode(publicKey: Uint8Array, prefix = BITTENSOR_SS58_PREFIX): string {
  if (publicKey.length !== 32) throw new ProtocolError('CNM_ERR_PROTOCOL_ARG', `public key must be 32 bytes, got ${publicKey.length}`);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 63) throw new ProtocolError('CNM_ERR_PROTOCOL_ARG', `unsupported SS58 prefix ${prefix}`);
  const body = new Uint8Array(33);
  body[0] = prefix;
  body.set(publicKey, 1);
  const full = new Uint8Array(35);
  full.set(body);
  full.set(checksum(body), 33);
  return base58Encode(full);
}

export function isValidSs58(address: string): boolean {
  try {
    ss58Decode(address);
    return true;
  } catch {
    return false;
  }
}

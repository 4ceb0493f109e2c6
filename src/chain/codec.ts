// Pure conversions between chain values and what the reference (bittensor 10.1, Python) makes of them.

import { ChainError } from './errors.js';

/** The Raw variants of the commitments pallet hold at most 128 bytes (PROTOCOL §2.1). */
export const COMMITMENT_MAX_BYTES = 128;

/**
 * UTF-8 decode that drops invalid bytes, like Python's `bytes.decode("utf-8", errors="ignore")` which
 * bittensor's `decode_metadata` uses. Each ill-formed sequence is dropped as its maximal subpart (the
 * Unicode "best practice" Python follows), so a legitimate U+FFFD in the input survives — unlike a
 * TextDecoder-then-strip-U+FFFD shortcut.
 */
export function decodeUtf8Ignore(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b0 = bytes[i]!;
    if (b0 < 0x80) {
      out += String.fromCharCode(b0);
      i += 1;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    let cp: number;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      need = 1;
      cp = b0 & 0x1f;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      need = 2;
      cp = b0 & 0x0f;
      if (b0 === 0xe0) lo = 0xa0;
      if (b0 === 0xed) hi = 0x9f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      need = 3;
      cp = b0 & 0x07;
      if (b0 === 0xf0) lo = 0x90;
      if (b0 === 0xf4) hi = 0x8f;
    } else {
      i += 1; // invalid start byte
      continue;
    }
    let j = i + 1;
    let ok = true;
    for (let k = 0; k < need; k++, j++) {
      const b = j < n ? bytes[j]! : -1;
      const l = k === 0 ? lo : 0x80;
      const h = k === 0 ? hi : 0xbf;
      if (b < l || b > h) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (b & 0x3f);
    }
    if (ok) {
      out += String.fromCodePoint(cp);
    }
    // On error j points at the first byte that broke the sequence: the maximal subpart [i, j) is dropped.
    i = j;
  }
  return out;
}

/** UTF-8 bytes of a commitment, checked against the Raw limit (byte count, not JS string length). */
export function commitmentBytes(data: string): Uint8Array {
  const bytes = new TextEncoder().encode(data);
  if (bytes.length > COMMITMENT_MAX_BYTES) {
    throw new ChainError(
      'CNM_ERR_CHAIN_ARG',
      `commitment is ${bytes.length} UTF-8 bytes; the chain's Raw commitment holds at most ${COMMITMENT_MAX_BYTES}`,
    );
  }
  return bytes;
}

/**
 * The axon IP as bittensor prints it: `str(netaddr.IPAddress(int))`. netaddr infers the version from the
 * value (≤ 2^32-1 → IPv4) regardless of the stored ip_type, and an unserved axon (0) prints "0.0.0.0".
 */
export function ipToString(ip: bigint): string {
  if (ip < 0n) throw new ChainError('CNM_ERR_CHAIN_ARG', `negative IP value ${ip}`);
  if (ip <= 0xffffffffn) {
    return [24n, 16n, 8n, 0n].map((s) => String((ip >> s) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(Number((ip >> s) & 0xffffn));
  // IPv4-mapped (::ffff:a.b.c.d) keeps the dotted tail, as netaddr does.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${ipToString(ip & 0xffffffffn)}`;
  }
  // Longest run (first on ties) of at least two zero groups becomes "::".
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Parse a dotted IPv4 or an IPv6 text into the u128 the chain stores, with its ip_type (4 or 6). */
export function ipFromString(text: string): { ip: bigint; ipType: 4 | 6 } {
  const s = text.trim();
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    if (parts.some((p) => p > 255)) throw new ChainError('CNM_ERR_CHAIN_ARG', `invalid IPv4 address "${text}"`);
    return { ip: parts.reduce((a, p) => (a << 8n) | BigInt(p), 0n), ipType: 4 };
  }
  if (!s.includes(':')) throw new ChainError('CNM_ERR_CHAIN_ARG', `invalid IP address "${text}" (expected IPv4 or IPv6)`);
  let head = s;
  let tail32: bigint | null = null;
  const dotted = /^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (dotted) {
    tail32 = ipFromString(dotted[2]!).ip;
    head = `${dotted[1]!}0:0`;
  }
  const halves = head.split('::');
  if (halves.length > 2) throw new ChainError('CNM_ERR_CHAIN_ARG', `invalid IPv6 address "${text}"`);
  const parse = (h: string): number[] => (h === '' ? [] : h.split(':').map((g) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new ChainError('CNM_ERR_CHAIN_ARG', `invalid IPv6 address "${text}"`);
    return parseInt(g, 16);
  }));
  const left = parse(halves[0]!);
  const right = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - left.length - right.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0 || (halves.length === 2 && fill < 1)) {
    throw new ChainError('CNM_ERR_CHAIN_ARG', `invalid IPv6 address "${text}"`);
  }
  const groups = [...left, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...right];
  let ip = groups.reduce((a, g) => (a << 16n) | BigInt(g), 0n);
  if (tail32 !== null) ip = (ip & ~0xffffffffn) | tail32;
  return { ip, ipType: 6 };
}

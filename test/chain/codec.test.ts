// Pure conversions against Python itself (Debian's python3 is the reference runtime of bittensor):
// commitment bytes decode like `bytes.decode("utf-8", errors="ignore")`, axon IPs print like the
// standard library; pool/dispatch errors classify into the reasons operators see.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  classifyDispatchError,
  classifyPoolRejection,
  commitmentBytes,
  decodeUtf8Ignore,
  ipFromString,
  ipToString,
} from '../../src/chain/index.js';

function python(script: string, input: string): string {
  return execFileSync('/usr/bin/python3', ['-c', script], { input, encoding: 'utf8' });
}

describe('decodeUtf8Ignore', () => {
  it('matches Python errors="ignore" on 400 random and adversarial byte strings', () => {
    const cases: Buffer[] = [
      Buffer.from('{"m": "plain ascii"}'),
      Buffer.from('héllo wörld ✓ 𝄞', 'utf8'),
      Buffer.from([0xef, 0xbf, 0xbd]), // a real U+FFFD must survive
      Buffer.from([0x61, 0x80, 0x62]), // lone continuation
      Buffer.from([0xe2, 0x82, 0x61]), // truncated 3-byte sequence then ASCII
      Buffer.from([0xed, 0xa0, 0x80]), // surrogate
      Buffer.from([0xf4, 0x90, 0x80, 0x80]), // > U+10FFFF
      Buffer.from([0xc0, 0xaf, 0xe0, 0x80, 0xaf]), // overlong
      Buffer.from([0xf0, 0x9f, 0x98]), // truncated at end
    ];
    for (let i = 0; i < 390; i++) {
      // Bias towards bytes that start or continue multi-byte sequences.
      const b = randomBytes(1 + (i % 40));
      for (let j = 0; j < b.length; j++) if (j % 3 === 0) b[j] = 0x80 | (b[j]! & 0x7f);
      cases.push(b);
    }
    const input = cases.map((c) => c.toString('hex')).join('\n');
    const out = python(
      'import sys,json\nprint(json.dumps([bytes.fromhex(l).decode("utf-8","ignore") for l in sys.stdin.read().split("\\n")]))',
      input,
    );
    const expected = JSON.parse(out) as string[];
    expect(expected).toHaveLength(cases.length);
    cases.forEach((c, i) => expect(decodeUtf8Ignore(c), `case ${i}: ${c.toString('hex')}`).toBe(expected[i]));
  });
});

describe('axon IPs', () => {
  it('print as Python prints them (IPv4 by value, compressed IPv6)', () => {
    const ints = [0n, 1n, 0x7f000001n, 0x0a000001n, 0xffffffffn, 0x20010db8000000000000000000000001n, 0xfe800000000000000000000000000000n,
      0x20010db8000100000001000000000001n, 0x20010db80000000000000000000000ffn, (1n << 128n) - 1n];
    const out = python(
      'import sys,ipaddress\nfor l in sys.stdin.read().split():\n  n=int(l)\n  print(ipaddress.IPv4Address(n) if n < 2**32 else ipaddress.IPv6Address(n))',
      ints.map(String).join('\n'),
    );
    expect(ints.map(ipToString)).toEqual(out.trim().split('\n'));
  });

  it('round-trips through ipFromString and rejects garbage', () => {
    for (const s of ['10.0.0.1', '255.255.255.254', '2001:db8::1', 'fe80::', '2001:db8:1:0:1::1']) {
      expect(ipToString(ipFromString(s).ip)).toBe(s);
    }
    expect(ipFromString('1.2.3.4')).toEqual({ ip: 0x01020304n, ipType: 4 });
    expect(ipFromString('::ffff:1.2.3.4')).toEqual({ ip: 0xffff01020304n, ipType: 6 });
    for (const bad of ['1.2.3', '256.1.1.1', 'example.org', '1::2::3', '12345::1', '']) {
      expect(() => ipFromString(bad), bad).toThrow(/invalid IP/);
    }
  });
});

describe('commitment size', () => {
  it('counts UTF-8 bytes, not characters, against the 128-byte Raw limit', () => {
    expect(commitmentBytes('x'.repeat(128))).toHaveLength(128);
    expect(() => commitmentBytes('x'.repeat(129))).toThrow(/129 UTF-8 bytes/);
    expect(() => commitmentBytes('é'.repeat(65))).toThrow(/130 UTF-8 bytes/); // 65 characters, 130 bytes
  });
});

describe('transaction error classification', () => {
  // Texts as @polkadot/rpc-provider formats a node's JSON-RPC error: "<code>: <message>: <data>".
  const err = (code: number, text: string): Error => Object.assign(new Error(`${code}: ${text}`), { code });
  it('maps pool rejections to reasons', () => {
    expect(classifyPoolRejection(err(1010, 'Invalid Transaction: Transaction has a bad signature')).reason).toBe('bad_signature');
    expect(classifyPoolRejection(err(1010, 'Invalid Transaction: Transaction is outdated')).reason).toBe('stale_nonce');
    expect(classifyPoolRejection(err(1014, 'Priority is too low: (0 vs 0): The transaction has too low priority')).reason).toBe('nonce_in_use');
    const c10 = classifyPoolRejection(err(1010, 'Invalid Transaction: Custom error: 10'));
    expect(c10).toEqual({ reason: 'not_registered', detail: '1010: Invalid Transaction: Custom error: 10 (HotKeyNotRegisteredInNetwork)' });
    expect(classifyPoolRejection(err(1010, 'Invalid Transaction: Custom error: 12')).reason).toBe('rate_limited');
    expect(classifyPoolRejection(err(1010, 'Invalid Transaction: Custom error: 13')).reason).toBe('invalid');
    expect(classifyPoolRejection(err(1010, 'Invalid Transaction: Inability to pay some fees')).reason).toBe('invalid');
  });
  it('maps pallet errors to reasons', () => {
    expect(classifyDispatchError('commitments.AccountNotAllowedCommit')).toBe('not_registered');
    expect(classifyDispatchError('commitments.SpaceLimitExceeded')).toBe('rate_limited');
    expect(classifyDispatchError('subtensorModule.ServingRateLimitExceeded')).toBe('rate_limited');
    expect(classifyDispatchError('balances.InsufficientBalance')).toBe('dispatch');
    expect(classifyDispatchError(null)).toBe('dispatch');
  });
});

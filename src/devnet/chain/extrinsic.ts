// Decoding and signature verification of version-4 extrinsics, done by hand from the bytes so the
// check is independent of the @polkadot/types signing code the client uses:
//   compact(len) ‖ 0x84 ‖ MultiAddress::Id(0x00 ‖ pubkey32) ‖ MultiSignature(0x01 ‖ sig64 | 0x00 ‖ sig64)
//   ‖ era ‖ compact(nonce) ‖ compact(tip) ‖ mode(u8) ‖ call
// Signed payload (subtensor spec 393 extension order, see shared/fixtures/chain/NOTES.md §1):
//   call ‖ era ‖ compact(nonce) ‖ compact(tip) ‖ mode ‖ u32 spec ‖ u32 txVersion ‖ genesis ‖ birthHash ‖ 0x00
// (the trailing 0x00 is CheckMetadataHash's Option::None); payloads over 256 bytes are signed as blake2-256.

import type { Call } from '@polkadot/types/interfaces';
import { compactFromU8a, hexToU8a, u8aConcat, u8aToHex } from '@polkadot/util';
import { blake2AsHex, blake2AsU8a, ed25519Verify, encodeAddress, sr25519Verify } from '@polkadot/util-crypto';
import { INVALID, RpcError } from './errors.js';
import type { ChainSpec } from './spec.js';

export interface MortalEra {
  period: number;
  phase: number;
}

export interface ParsedExtrinsic {
  hex: string;
  /** blake2-256 of the whole encoding (with its length prefix), as polkadot-js computes `tx.hash`. */
  hash: string;
  signed: boolean;
  call: Call;
  /** `commitments.setCommitment` style name. */
  callName: string;
  callBytes: Uint8Array;
  signer?: string;
  signerKey?: Uint8Array;
  sigType?: 'ed25519' | 'sr25519' | 'ecdsa';
  signature?: Uint8Array;
  /** null = immortal. */
  era?: MortalEra | null;
  nonce?: number;
  tip?: bigint;
  mode?: number;
  /** era ‖ nonce ‖ tip ‖ mode exactly as in the extrinsic (they are signed as is). */
  extraBytes?: Uint8Array;
}

const malformed = (what: string): RpcError =>
  new RpcError(1002, 'Verification Error', `Runtime error: Could not decode extrinsic: ${what}`);

export function decodeEra(bytes: Uint8Array): MortalEra | null {
  if (bytes.length === 1 && bytes[0] === 0) return null;
  const encoded = bytes[0]! | (bytes[1]! << 8);
  const period = 2 << encoded % (1 << 4);
  const quantizeFactor = Math.max(period >> 12, 1);
  const phase = (encoded >> 4) * quantizeFactor;
  return { period, phase };
}

/** First block of the era window containing `current` (Substrate `Era::birth`). */
export function eraBirth(era: MortalEra, current: number): number {
  return Math.floor((Math.max(current, era.phase) - era.phase) / era.period) * era.period + era.phase;
}

export function parseExtrinsic(spec: ChainSpec, hex: string): ParsedExtrinsic {
  let bytes: Uint8Array;
  try {
    bytes = hexToU8a(hex);
  } catch {
    throw malformed('not hex');
  }
  const [lenBytes, len] = compactFromU8a(bytes);
  if (lenBytes + len.toNumber() !== bytes.length) throw malformed('length prefix does not match');
  let p = lenBytes;
  const version = bytes[p++];
  const hash = blake2AsHex(bytes, 256);
  const need = (n: number): void => {
    if (p + n > bytes.length) throw malformed('truncated');
  };
  const decodeCall = (callBytes: Uint8Array): Call => {
    try {
      const call = spec.registry.createType('Call', callBytes);
      if (call.encodedLength !== callBytes.length) throw new Error('trailing bytes');
      return call;
    } catch (e) {
      throw malformed(`call: ${(e as Error).message.split('\n')[0]}`);
    }
  };
  if (version === 0x04) {
    const callBytes = bytes.subarray(p);
    const call = decodeCall(callBytes);
    return { hex: u8aToHex(bytes), hash, signed: false, call, callName: `${call.section}.${call.method}`, callBytes };
  }
  if (version !== 0x84) throw malformed(`unsupported extrinsic version byte 0x${(version ?? 0).toString(16)}`);
  need(1);
  if (bytes[p++] !== 0x00) throw INVALID.badSigner(); // only MultiAddress::Id is a real account
  need(32);
  const signerKey = bytes.slice(p, p + 32);
  p += 32;
  need(1);
  const sigTag = bytes[p++];
  const sigType = sigTag === 0 ? 'ed25519' : sigTag === 1 ? 'sr25519' : sigTag === 2 ? 'ecdsa' : undefined;
  if (sigType === undefined) throw malformed('unknown signature type');
  const sigLen = sigType === 'ecdsa' ? 65 : 64;
  need(sigLen);
  const signature = bytes.slice(p, p + sigLen);
  p += sigLen;
  const extraStart = p;
  need(1);
  const eraLen = bytes[p] === 0 ? 1 : 2;
  need(eraLen);
  const era = decodeEra(bytes.subarray(p, p + eraLen));
  p += eraLen;
  const [nb, nonce] = compactFromU8a(bytes.subarray(p));
  p += nb;
  const [tb, tip] = compactFromU8a(bytes.subarray(p));
  p += tb;
  need(1);
  const mode = bytes[p++]!;
  const extraBytes = bytes.slice(extraStart, p);
  const callBytes = bytes.subarray(p);
  const call = decodeCall(callBytes);
  return {
    hex: u8aToHex(bytes),
    hash,
    signed: true,
    call,
    callName: `${call.section}.${call.method}`,
    callBytes,
    signer: encodeAddress(signerKey, 42),
    signerKey,
    sigType,
    signature,
    era,
    nonce: nonce.toNumber(),
    tip: BigInt(tip.toString()),
    mode,
    extraBytes,
  };
}

export interface SigningContext {
  specVersion: number;
  transactionVersion: number;
  genesisHash: string;
  /** Hash of the era's birth block (the genesis hash for immortal transactions). */
  birthHash: string;
}

export function signingPayload(x: ParsedExtrinsic, ctx: SigningContext): Uint8Array {
  const u32 = (n: number): Uint8Array => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    return b;
  };
  const payload = u8aConcat(
    x.callBytes,
    x.extraBytes ?? new Uint8Array(),
    u32(ctx.specVersion),
    u32(ctx.transactionVersion),
    hexToU8a(ctx.genesisHash),
    hexToU8a(ctx.birthHash),
    new Uint8Array([0]),
  );
  return payload.length > 256 ? blake2AsU8a(payload, 256) : payload;
}

export function verifySignature(x: ParsedExtrinsic, ctx: SigningContext): boolean {
  if (!x.signed || x.signature === undefined || x.signerKey === undefined) return false;
  // CheckMetadataHash mode 1 signs a metadata digest the devnode does not compute.
  if (x.mode !== 0) return false;
  const msg = signingPayload(x, ctx);
  try {
    if (x.sigType === 'sr25519') return sr25519Verify(msg, x.signature, x.signerKey);
    if (x.sigType === 'ed25519') return ed25519Verify(msg, x.signature, x.signerKey);
  } catch {
    return false;
  }
  return false; // ecdsa accounts are 33-byte keys hashed into the AccountId: not supported here
}

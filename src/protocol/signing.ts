// The three signed messages of the cbf3c65 protocol (PROTOCOL.md §4.3–4.4). Signatures are sr25519
// (context "substrate", randomized) by the miner hotkey, sent as base64url without padding.
import { sr25519Sign, sr25519Verify } from '@polkadot/util-crypto';
import { ProtocolError } from './errors.js';
import { base64UrlNoPad, fromBase64UrlNoPad, fromHex } from './hex.js';
import { ss58PublicKey } from './ss58.js';

/** An sr25519 key pair as @polkadot/util-crypto produces it (64-byte secret, 32-byte public key). */
export interface Sr25519Pair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

const MODEL_HASH_HEX = /^[0-9a-f]{48}$/;

/** `construct_block_message(target, block)` = pubkey(target) ‖ u64 big-endian(block): 40 bytes. */
export function blockMessage(targetSs58: string, block: number | bigint): Uint8Array {
  const b = BigInt(block);
  if (b < 0n || b >= 1n << 64n) throw new ProtocolError('CNM_ERR_PROTOCOL_ARG', `block ${b} does not fit an unsigned 64-bit integer`);
  const out = new Uint8Array(40);
  out.set(ss58PublicKey(targetSs58), 0);
  new DataView(out.buffer).setBigUint64(32, b, false);
  return out;
}

function checkHashHex(hashHex: string): void {
  if (!MODEL_HASH_HEX.test(hashHex)) {
    throw new ProtocolError('CNM_ERR_PROTOCOL_ARG', `model hash must be 48 lowercase hex characters, got ${JSON.stringify(hashHex)}`);
  }
}

/** Chain commit 1 signs the UTF-8 bytes of the 48-char lowercase hex string (not the raw 24 bytes). */
export function modelHashMessage(hashHex: string): Uint8Array {
  checkHashHex(hashHex);
  return new Uint8Array(Buffer.from(hashHex, 'utf8'));
}

/** The submission signs raw hash (24 bytes) ‖ blockMessage(target, block): 64 bytes. */
export function submissionMessage(modelHash: Uint8Array | string, targetSs58: string, block: number | bigint): Uint8Array {
  const raw = typeof modelHash === 'string' ? (checkHashHex(modelHash), fromHex(modelHash, 24)) : modelHash;
  if (raw.length !== 24) throw new ProtocolError('CNM_ERR_PROTOCOL_ARG', `model hash must be 24 bytes, got ${raw.length}`);
  const out = new Uint8Array(64);
  out.set(raw, 0);
  out.set(blockMessage(targetSs58, block), 24);
  return out;
}

/** The download request signs blockMessage(validator, block). */
export function downloadMessage(targetSs58: string, block: number | bigint): Uint8Array {
  return blockMessage(targetSs58, block);
}

/** `sign_message`: base64url-no-pad of an sr25519 signature (86 characters). */
export function signMessage(pair: Sr25519Pair, message: Uint8Array): string {
  return base64UrlNoPad(sr25519Sign(message, pair));
}

const BYTES_OPEN = Buffer.from('<Bytes>');
const BYTES_CLOSE = Buffer.from('</Bytes>');

/**
 * `verify_message`: true iff `signatureB64` is a valid signature by `signerSs58` over `message` or
 * over `<Bytes>message</Bytes>` (the wrapping the Rust verifier also accepts). Malformed addresses or
 * signatures verify as false (the reference raises; callers answer that as a rejection either way).
 */
export function verifyMessage(signerSs58: string, message: Uint8Array, signatureB64: string): boolean {
  let pub: Uint8Array;
  let sig: Uint8Array;
  try {
    pub = ss58PublicKey(signerSs58);
    sig = fromBase64UrlNoPad(signatureB64);
  } catch {
    return false;
  }
  if (sig.length !== 64) return false;
  try {
    if (sr25519Verify(message, sig, pub)) return true;
    const wrapped = new Uint8Array(Buffer.concat([BYTES_OPEN, message, BYTES_CLOSE]));
    return sr25519Verify(wrapped, sig, pub);
  } catch {
    return false;
  }
}

/** Commit-1 signature over the hex model hash. */
export function signModelHash(pair: Sr25519Pair, hashHex: string): string {
  return signMessage(pair, modelHashMessage(hashHex));
}

export function verifyModelHash(signerSs58: string, hashHex: string, signatureB64: string): boolean {
  if (!MODEL_HASH_HEX.test(hashHex)) return false;
  return verifyMessage(signerSs58, modelHashMessage(hashHex), signatureB64);
}

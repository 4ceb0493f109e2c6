// Bittensor wallets as btwallet 4.x (bittensor 10) lays them on disk:
//   <wallet_path>/<name>/coldkeypub.txt      {"accountId","publicKey","ss58Address"}
//   <wallet_path>/<name>/hotkeys/<hotkey>    {"accountId","publicKey","privateKey","secretPhrase","secretSeed","ss58Address"}
// The miner signs everything with the hotkey (sr25519, SS58 prefix 42). The coldkey is only shown.
// Secrets never leave this module except inside the KeyringPair, and no error message quotes a file's text.

import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { hexToU8a, isHex, u8aConcat, u8aEq, u8aToHex } from '@polkadot/util';
import {
  cryptoWaitReady,
  decodeAddress,
  encodeAddress,
  mnemonicToMiniSecret,
  mnemonicValidate,
  sr25519PairFromSeed,
  sr25519Sign,
  sr25519Verify,
} from '@polkadot/util-crypto';
import type { Sr25519Pair } from '../protocol/signing.js';
import type { Logger } from '../telemetry/logger.js';
import { WalletError } from './errors.js';

export const SS58_PREFIX = 42;

export interface WalletSpec {
  /** Directory holding the wallets; default `$BT_WALLET_PATH` or `~/.bittensor/wallets`. `~` is expanded. */
  path?: string;
  /** Wallet (coldkey) name, `btcli --wallet.name`. */
  name: string;
  /** Hotkey name, `btcli --wallet.hotkey`. */
  hotkey: string;
}

export interface WalletFiles {
  walletDir: string;
  hotkeyFile: string;
  coldkeypubFile: string;
}

/** A loaded wallet. `toJSON` shows addresses and paths only, so logging it never leaks the key. */
export class Wallet {
  readonly #raw: Sr25519Pair;

  constructor(
    readonly name: string,
    readonly hotkeyName: string,
    readonly files: WalletFiles,
    /** Keyring pair of the hotkey: signs extrinsics (`signAndSend`) and messages (`.sign`). */
    readonly hotkey: KeyringPair,
    raw: Sr25519Pair,
    /** SS58 of the coldkey from coldkeypub.txt; null when that file is absent (a warning says so). */
    readonly coldkeyAddress: string | null,
    /** Non-fatal problems found while loading (loose permissions, missing coldkeypub.txt). */
    readonly warnings: readonly string[],
  ) {
    this.#raw = raw;
  }

  get hotkeyAddress(): string {
    return this.hotkey.address;
  }

  /**
   * The hotkey as a raw sr25519 pair for src/protocol's signMessage/signModelHash. Holds the secret:
   * never log it.
   */
  sr25519Pair(): Sr25519Pair {
    return { publicKey: this.#raw.publicKey, secretKey: this.#raw.secretKey };
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      hotkeyName: this.hotkeyName,
      hotkey: this.hotkeyAddress,
      coldkey: this.coldkeyAddress,
      hotkeyFile: this.files.hotkeyFile,
    };
  }
}

export function defaultWalletPath(env: NodeJS.ProcessEnv = process.env): string {
  return expandHome(env.BT_WALLET_PATH ?? '~/.bittensor/wallets');
}

export function expandHome(p: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/')) return join(homedir(), p.slice(2));
  return p;
}

export function walletFiles(spec: WalletSpec): WalletFiles {
  const root = resolve(expandHome(spec.path ?? defaultWalletPath()));
  const walletDir = join(root, spec.name);
  return {
    walletDir,
    hotkeyFile: join(walletDir, 'hotkeys', spec.hotkey),
    coldkeypubFile: join(walletDir, 'coldkeypub.txt'),
  };
}

const ENCRYPTION_MARKERS: Array<[string, string]> = [
  ['$NACL', 'NaCl secretbox'],
  ['$ANSIBLE_VAULT', 'Ansible vault (legacy)'],
  ['gAAAAA', 'Fernet (legacy)'],
];

/** Load the wallet; throws WalletError with the file at fault and the btcli command that fixes it. */
export async function loadWallet(spec: WalletSpec, opts: { logger?: Logger } = {}): Promise<Wallet> {
  const files = walletFiles(spec);
  const btArgs = `--wallet.name ${spec.name} --wallet.hotkey ${spec.hotkey}`;
  const walletPathHint = 'or point chain.wallet_path (--wallet-path) at the directory that holds it';

  const dirStat = await stat(files.walletDir).catch(() => null);
  if (dirStat === null || !dirStat.isDirectory()) {
    throw new WalletError(
      'CNM_ERR_WALLET_MISSING',
      files.walletDir,
      `wallet "${spec.name}" not found: ${files.walletDir} does not exist. Create it with ` +
        `\`btcli wallet create ${btArgs}\` (or restore it with \`btcli wallet regen-coldkeypub\` and ` +
        `\`btcli wallet regen-hotkey\`), ${walletPathHint}.`,
    );
  }
  const raw = await readFile(files.hotkeyFile).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') {
      throw new WalletError(
        'CNM_ERR_WALLET_MISSING',
        files.hotkeyFile,
        `hotkey "${spec.hotkey}" of wallet "${spec.name}" not found: ${files.hotkeyFile} does not exist. ` +
          `Create it with \`btcli wallet new-hotkey ${btArgs}\` (or restore it from its mnemonic with ` +
          `\`btcli wallet regen-hotkey ${btArgs}\`), ${walletPathHint}.`,
      );
    }
    throw new WalletError('CNM_ERR_WALLET_MISSING', files.hotkeyFile, `cannot read hotkey file ${files.hotkeyFile}: ${e.code ?? e.message}`);
  });

  const warnings: string[] = [];
  const st = await stat(files.hotkeyFile);
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    warnings.push(
      `hotkey file ${files.hotkeyFile} has mode ${mode}: other users can read the hotkey secret. Run \`chmod 600 ${files.hotkeyFile}\`.`,
    );
  }

  const head = raw.subarray(0, 16).toString('latin1');
  for (const [marker, kind] of ENCRYPTION_MARKERS) {
    if (head.startsWith(marker)) {
      throw new WalletError(
        'CNM_ERR_WALLET_ENCRYPTED',
        files.hotkeyFile,
        `hotkey file ${files.hotkeyFile} is encrypted (${kind}). The miner signs unattended and needs the hotkey ` +
          `unencrypted, which is btcli's default for hotkeys. Regenerate it unencrypted from its mnemonic with ` +
          `\`btcli wallet regen-hotkey ${btArgs} --no-use-password\`.`,
      );
    }
  }

  await cryptoWaitReady();
  const { pair: hotkey, raw: rawPair } = pairFromKeyfile(raw.toString('utf8'), files.hotkeyFile, btArgs);

  let coldkeyAddress: string | null = null;
  const coldText = await readFile(files.coldkeypubFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw new WalletError('CNM_ERR_WALLET_MISSING', files.coldkeypubFile, `cannot read ${files.coldkeypubFile}: ${e.code ?? e.message}`);
  });
  if (coldText === null) {
    warnings.push(
      `${files.coldkeypubFile} is missing: the coldkey address is unknown (signing does not need it). ` +
        `Restore it with \`btcli wallet regen-coldkeypub --wallet.name ${spec.name} --ss58-address <coldkey ss58>\`.`,
    );
  } else {
    coldkeyAddress = parseColdkeypub(coldText, files.coldkeypubFile, spec.name);
  }

  for (const w of warnings) opts.logger?.warn({ wallet: spec.name, hotkey: spec.hotkey }, w);
  return new Wallet(spec.name, spec.hotkey, files, hotkey, rawPair, coldkeyAddress, warnings);
}

function badJson(path: string, what: string, fix: string): WalletError {
  return new WalletError('CNM_ERR_WALLET_BAD_JSON', path, `${path} is not a valid Bittensor key file: ${what}. ${fix}`);
}

/**
 * Build the sr25519 pair from the key file text, in btwallet's priority: secretPhrase, secretSeed,
 * privateKey. The derived public key must equal the one written in the file. Requires cryptoWaitReady().
 */
export function pairFromKeyfile(
  text: string,
  path: string,
  btArgs = '--wallet.name <name> --wallet.hotkey <hotkey>',
): { pair: KeyringPair; raw: Sr25519Pair } {
  const regen = `Restore it from its mnemonic with \`btcli wallet regen-hotkey ${btArgs}\`.`;
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    // The parser's message quotes the text, which holds the secret: never pass it on.
    throw badJson(path, 'the file is not JSON', regen);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw badJson(path, 'expected a JSON object', regen);
  const o = j as Record<string, unknown>;
  const hexField = (name: string, bytes: number): Uint8Array | undefined => {
    const v = o[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || !isHex(v) || (v.length - 2) / 2 !== bytes) {
      throw badJson(path, `field "${name}" must be 0x followed by ${bytes * 2} hex digits`, regen);
    }
    return hexToU8a(v);
  };
  const publicKey = hexField('publicKey', 32) ?? hexField('accountId', 32);
  const secretSeed = hexField('secretSeed', 32);
  const privateKey = hexField('privateKey', 64);
  const phrase = o.secretPhrase;
  if (phrase !== undefined && phrase !== null && typeof phrase !== 'string') {
    throw badJson(path, 'field "secretPhrase" must be a string', regen);
  }

  // sp_core's Pair::from_phrase(m, None) = sr25519 from the BIP39 mini-secret, the same as polkadot-js.
  let raw: Sr25519Pair;
  try {
    if (typeof phrase === 'string' && phrase.trim() !== '') {
      const words = phrase.trim().split(/\s+/).join(' ');
      if (!mnemonicValidate(words)) throw badJson(path, '"secretPhrase" is not a valid BIP39 mnemonic', regen);
      raw = sr25519PairFromSeed(mnemonicToMiniSecret(words));
    } else if (secretSeed !== undefined) {
      raw = sr25519PairFromSeed(secretSeed);
    } else if (privateKey !== undefined) {
      if (publicKey === undefined) throw badJson(path, '"privateKey" without "publicKey"', regen);
      raw = { publicKey, secretKey: schnorrkelToPolkadotSecret(privateKey) };
    } else {
      throw new WalletError(
        'CNM_ERR_WALLET_BAD_JSON',
        path,
        `${path} holds no secret (no secretPhrase, secretSeed or privateKey): it is a public-key file, not a hotkey. ${regen}`,
      );
    }
  } catch (e) {
    if (e instanceof WalletError) throw e;
    // Crypto errors may echo their input (a mnemonic): report the field only.
    throw badJson(path, 'the secret fields do not form a valid sr25519 key', regen);
  }
  // A privateKey is taken with the file's publicKey: prove they belong together by a sign/verify round.
  const probe = new TextEncoder().encode('connito-miner wallet check');
  if (!sr25519Verify(probe, sr25519Sign(probe, raw), raw.publicKey)) {
    throw new WalletError(
      'CNM_ERR_WALLET_KEY_MISMATCH',
      path,
      `${path}: "privateKey" does not belong to "publicKey". The file is corrupt or was edited. ${regen}`,
    );
  }
  const pair = new Keyring({ type: 'sr25519', ss58Format: SS58_PREFIX }).addFromPair(raw);

  if (publicKey !== undefined && !u8aEq(publicKey, pair.publicKey)) {
    throw new WalletError(
      'CNM_ERR_WALLET_KEY_MISMATCH',
      path,
      `${path}: the secret produces public key ${u8aToHex(pair.publicKey)} but the file says ${u8aToHex(publicKey)}. ` +
        `The file is corrupt or was edited. ${regen}`,
    );
  }
  const ss58 = o.ss58Address;
  if (typeof ss58 === 'string' && ss58 !== pair.address) {
    throw new WalletError(
      'CNM_ERR_WALLET_KEY_MISMATCH',
      path,
      `${path}: the secret produces address ${pair.address} but the file says ${ss58}. The file is corrupt or was edited. ${regen}`,
    );
  }
  return { pair, raw };
}

function parseColdkeypub(text: string, path: string, name: string): string {
  const fix = `Restore it with \`btcli wallet regen-coldkeypub --wallet.name ${name} --ss58-address <coldkey ss58>\`.`;
  const trimmed = text.trim();
  let ss58: unknown;
  let publicKey: unknown;
  if (trimmed.startsWith('{')) {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(trimmed) as Record<string, unknown>;
    } catch {
      throw badJson(path, 'the file is not JSON', fix);
    }
    ss58 = o.ss58Address;
    publicKey = o.publicKey ?? o.accountId;
  } else {
    ss58 = trimmed; // very old wallets stored the bare address
  }
  if (typeof ss58 === 'string') {
    try {
      const pk = decodeAddress(ss58);
      if (typeof publicKey === 'string' && isHex(publicKey) && !u8aEq(hexToU8a(publicKey), pk)) {
        throw new WalletError('CNM_ERR_WALLET_KEY_MISMATCH', path, `${path}: ss58Address and publicKey disagree. ${fix}`);
      }
      return encodeAddress(pk, SS58_PREFIX);
    } catch (e) {
      if (e instanceof WalletError) throw e;
      throw badJson(path, `"ss58Address" is not a valid SS58 address`, fix);
    }
  }
  if (typeof publicKey === 'string' && isHex(publicKey) && publicKey.length === 66) {
    return encodeAddress(hexToU8a(publicKey), SS58_PREFIX);
  }
  throw badJson(path, 'no "ss58Address" or "publicKey" field', fix);
}

/**
 * btwallet's `privateKey` is schnorrkel `SecretKey::to_bytes()`: the canonical scalar (32 bytes LE)
 * then the 32-byte nonce. polkadot-js keeps the scalar multiplied by the cofactor 8 ("ed25519 form").
 */
export function schnorrkelToPolkadotSecret(sk: Uint8Array): Uint8Array {
  if (sk.length !== 64) throw new Error('schnorrkel secret key must be 64 bytes');
  let scalar = 0n;
  for (let i = 31; i >= 0; i--) scalar = (scalar << 8n) | BigInt(sk[i]!);
  scalar <<= 3n;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((scalar >> BigInt(8 * i)) & 0xffn);
  return u8aConcat(out, sk.subarray(32, 64));
}

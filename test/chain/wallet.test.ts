// The Bittensor on-disk wallet: the fixture loads through all three secret fields btwallet writes,
// signs what verifies under the reference rules (PROTOCOL §4.3), and every broken wallet gets a typed
// error naming the file and the btcli command that fixes it — without ever printing a secret.
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { hexToU8a, stringToU8a, u8aToHex } from '@polkadot/util';
import { cryptoWaitReady, decodeAddress, signatureVerify, sr25519Verify } from '@polkadot/util-crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  defaultWalletPath,
  loadWallet,
  pairFromKeyfile,
  schnorrkelToPolkadotSecret,
  WalletError,
  walletFiles,
} from '../../src/chain/index.js';
import { fromBase64UrlNoPad, modelHashMessage, signModelHash, verifyMessage, verifyModelHash } from '../../src/protocol/index.js';
import { createLogger } from '../../src/telemetry/logger.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/chain');
const HOTKEY_JSON = JSON.parse(readFileSync(join(FIXTURES, 'wallets/testcold/hotkeys/testhot'), 'utf8')) as Record<string, string>;
const SECRETS = [HOTKEY_JSON.secretPhrase!, HOTKEY_JSON.secretSeed!, HOTKEY_JSON.privateKey!];
const HASH = '28e92acfd4508dbdacfd7beb934df27dc466d3f99b0ede38';

let root: string;

/** A copy of the fixture wallets dir with the hotkey at 0600, as btcli leaves it. */
function freshWallets(): string {
  const dir = mkdtempSync(join(root, 'w-'));
  cpSync(join(FIXTURES, 'wallets'), dir, { recursive: true });
  chmodSync(join(dir, 'testcold/hotkeys/testhot'), 0o600);
  return dir;
}

function capture(): { logger: ReturnType<typeof createLogger>; text: () => string } {
  const chunks: string[] = [];
  const dest = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c.toString());
      cb();
    },
  });
  return { logger: createLogger({ proc: 'test', json: true, destination: dest, level: 'debug' }), text: () => chunks.join('') };
}

async function expectWalletError(p: Promise<unknown>, code: string): Promise<WalletError> {
  const e = await p.then(
    () => {
      throw new Error('expected a WalletError');
    },
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(WalletError);
  expect((e as WalletError).code).toBe(code);
  for (const s of SECRETS) expect((e as Error).message).not.toContain(s);
  return e as WalletError;
}

beforeAll(async () => {
  await cryptoWaitReady();
  root = mkdtempSync(join(tmpdir(), 'cnm-wallet-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('loading the fixture wallet', () => {
  it('loads hotkey and coldkey addresses from the Bittensor on-disk layout, with no warning at mode 0600', async () => {
    const { logger, text } = capture();
    const w = await loadWallet({ path: freshWallets(), name: 'testcold', hotkey: 'testhot' }, { logger });
    expect(w.hotkeyAddress).toBe(HOTKEY_JSON.ss58Address);
    expect(u8aToHex(w.hotkey.publicKey)).toBe(HOTKEY_JSON.publicKey);
    expect(w.coldkeyAddress).toBe('5G1cC14dQ98GYctcygAewqKP112QBYnqNeGuRR16hHurPqyy');
    expect(w.warnings).toEqual([]);
    expect(text()).toBe('');
  });

  it('derives the same key from secretPhrase, secretSeed and the schnorrkel privateKey', async () => {
    const only = (keep: string): string => {
      const o: Record<string, string> = { accountId: HOTKEY_JSON.accountId!, publicKey: HOTKEY_JSON.publicKey! };
      o[keep] = HOTKEY_JSON[keep]!;
      return JSON.stringify(o);
    };
    const fromPhrase = pairFromKeyfile(only('secretPhrase'), 'phrase');
    const fromSeed = pairFromKeyfile(only('secretSeed'), 'seed');
    const fromPrivate = pairFromKeyfile(only('privateKey'), 'private');
    for (const k of [fromPhrase, fromSeed, fromPrivate]) {
      expect(k.pair.address).toBe(HOTKEY_JSON.ss58Address);
      // Each must actually sign for that address (a wrong secret form would still carry the file's public key).
      const msg = stringToU8a('probe');
      expect(sr25519Verify(msg, k.pair.sign(msg), decodeAddress(HOTKEY_JSON.ss58Address!))).toBe(true);
      expect(sr25519Verify(msg, k.pair.sign(msg), k.raw.publicKey)).toBe(true);
    }
    // polkadot-js keeps the scalar ×8: the seed-derived secret equals the converted schnorrkel one.
    expect(u8aToHex(fromSeed.raw.secretKey)).toBe(u8aToHex(schnorrkelToPolkadotSecret(hexToU8a(HOTKEY_JSON.privateKey!))));
  });

  it('signs a model hash that verifies under the reference rules (UTF-8 of the hex string, base64url-no-pad)', async () => {
    const w = await loadWallet({ path: freshWallets(), name: 'testcold', hotkey: 'testhot' });
    const sig = signModelHash(w.sr25519Pair(), HASH);
    expect(sig).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(verifyModelHash(w.hotkeyAddress, HASH, sig)).toBe(true);
    // Independent check: raw sr25519 over exactly the 48 ASCII bytes of the hash, by the SS58's public key.
    const raw = fromBase64UrlNoPad(sig);
    expect(sr25519Verify(new TextEncoder().encode(HASH), raw, decodeAddress(w.hotkeyAddress))).toBe(true);
    expect(sr25519Verify(hexToU8a(`0x${HASH}`), raw, decodeAddress(w.hotkeyAddress))).toBe(false);
    // The keyring pair used for extrinsics signs the same way.
    const viaKeyring = w.hotkey.sign(modelHashMessage(HASH));
    expect(signatureVerify(modelHashMessage(HASH), viaKeyring, w.hotkeyAddress).isValid).toBe(true);
    // Another key's signature does not verify for this hotkey.
    expect(verifyMessage('5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY', modelHashMessage(HASH), sig)).toBe(false);
  });

  it('the reference sr25519 vectors verify with the same primitives, and fail when altered', () => {
    const v = JSON.parse(readFileSync(join(FIXTURES, 'sr25519_examples.json'), 'utf8')) as {
      examples: Array<{ signer_ss58: string; message_hex: string; signature_hex: string; signature_b64url_nopad: string }>;
    };
    expect(v.examples.length).toBe(3);
    for (const ex of v.examples) {
      const msg = hexToU8a(`0x${ex.message_hex}`);
      expect(verifyMessage(ex.signer_ss58, msg, ex.signature_b64url_nopad)).toBe(true);
      expect(signatureVerify(msg, hexToU8a(`0x${ex.signature_hex}`), ex.signer_ss58).isValid).toBe(true);
      const bad = msg.slice();
      bad[0] = bad[0]! ^ 1;
      expect(verifyMessage(ex.signer_ss58, bad, ex.signature_b64url_nopad)).toBe(false);
    }
  });

  it('the fixture addresses decode as the SS58 vectors say (prefix 42), and a bad checksum is refused', () => {
    const v = JSON.parse(readFileSync(join(FIXTURES, 'ss58.json'), 'utf8')) as {
      cases: Array<{ ss58: string; public_key_hex: string }>;
      bad_checksum_example: { ss58: string };
    };
    for (const c of v.cases) expect(u8aToHex(decodeAddress(c.ss58))).toBe(`0x${c.public_key_hex}`);
    expect(() => decodeAddress(v.bad_checksum_example.ss58)).toThrow();
  });
});

describe('broken wallets', () => {
  it('missing wallet directory: CNM_ERR_WALLET_MISSING naming the directory and `btcli wallet create`', async () => {
    const dir = freshWallets();
    const e = await expectWalletError(loadWallet({ path: dir, name: 'nosuch', hotkey: 'testhot' }), 'CNM_ERR_WALLET_MISSING');
    expect(e.path).toBe(join(dir, 'nosuch'));
    expect(e.message).toContain('btcli wallet create --wallet.name nosuch --wallet.hotkey testhot');
  });

  it('missing hotkey file: names the file and `btcli wallet new-hotkey`', async () => {
    const dir = freshWallets();
    const e = await expectWalletError(loadWallet({ path: dir, name: 'testcold', hotkey: 'other' }), 'CNM_ERR_WALLET_MISSING');
    expect(e.path).toBe(join(dir, 'testcold/hotkeys/other'));
    expect(e.message).toContain('btcli wallet new-hotkey --wallet.name testcold --wallet.hotkey other');
  });

  it('encrypted hotkey ($NACL): CNM_ERR_WALLET_ENCRYPTED with the regen command that writes it unencrypted', async () => {
    const dir = freshWallets();
    writeFileSync(join(dir, 'testcold/hotkeys/testhot'), Buffer.concat([Buffer.from('$NACL'), Buffer.alloc(60, 7)]));
    const e = await expectWalletError(loadWallet({ path: dir, name: 'testcold', hotkey: 'testhot' }), 'CNM_ERR_WALLET_ENCRYPTED');
    expect(e.message).toContain('btcli wallet regen-hotkey --wallet.name testcold --wallet.hotkey testhot --no-use-password');
  });

  it('bad JSON: CNM_ERR_WALLET_BAD_JSON without quoting the file (it holds the secret)', async () => {
    const dir = freshWallets();
    const text = readFileSync(join(dir, 'testcold/hotkeys/testhot'), 'utf8');
    writeFileSync(join(dir, 'testcold/hotkeys/testhot'), text.slice(0, text.length - 5)); // truncated
    const e = await expectWalletError(loadWallet({ path: dir, name: 'testcold', hotkey: 'testhot' }), 'CNM_ERR_WALLET_BAD_JSON');
    expect(e.message).toContain('not JSON');
    expect(e.message).not.toContain(text.slice(0, 30));
  });

  it('a public-key-only file is not a hotkey', async () => {
    const dir = freshWallets();
    writeFileSync(join(dir, 'testcold/hotkeys/testhot'), readFileSync(join(dir, 'testcold/coldkeypub.txt')));
    const e = await expectWalletError(loadWallet({ path: dir, name: 'testcold', hotkey: 'testhot' }), 'CNM_ERR_WALLET_BAD_JSON');
    expect(e.message).toContain('holds no secret');
  });

  it('a secret that does not match the stored public key: CNM_ERR_WALLET_KEY_MISMATCH', async () => {
    const alicePub = '0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d';
    const dir = freshWallets();
    const edited = { ...HOTKEY_JSON, publicKey: alicePub, accountId: alicePub };
    delete (edited as Record<string, unknown>).ss58Address;
    writeFileSync(join(dir, 'testcold/hotkeys/testhot'), JSON.stringify(edited));
    await expectWalletError(loadWallet({ path: dir, name: 'testcold', hotkey: 'testhot' }), 'CNM_ERR_WALLET_KEY_MISMATCH');
    // privateKey alone with a foreign publicKey: caught by the sign/verify probe.
    writeFileSync(join(dir, 'testcold/hotkeys/testhot'), JSON.stringify({ publicKey: alicePub, privateKey: HOTKEY_JSON.privateKey }));
    await expectWalletError(loadWallet({ path: dir, name: 'testcold', hotkey: 'testhot' }), 'CNM_ERR_WALLET_KEY_MISMATCH');
  });

  it('a hotkey readable by others loads with a warning telling to chmod 600; the log carries no secret', async () => {
    const dir = freshWallets();
    const file = join(dir, 'testcold/hotkeys/testhot');
    chmodSync(file, 0o644);
    const { logger, text } = capture();
    const w = await loadWallet({ path: dir, name: 'testcold', hotkey: 'testhot' }, { logger });
    expect(w.hotkeyAddress).toBe(HOTKEY_JSON.ss58Address);
    expect(w.warnings).toHaveLength(1);
    expect(w.warnings[0]).toContain(`chmod 600 ${file}`);
    expect(w.warnings[0]).toContain('0644');
    const logged = text();
    expect(logged).toContain('chmod 600');
    // Even logging the wallet object itself leaks nothing.
    logger.info({ wallet: w }, 'loaded');
    for (const s of SECRETS) {
      expect(text()).not.toContain(s);
      expect(JSON.stringify(w)).not.toContain(s);
    }
  });

  it('a missing coldkeypub.txt is a warning (signing does not need the coldkey), not an error', async () => {
    const dir = freshWallets();
    rmSync(join(dir, 'testcold/coldkeypub.txt'));
    const w = await loadWallet({ path: dir, name: 'testcold', hotkey: 'testhot' });
    expect(w.coldkeyAddress).toBeNull();
    expect(w.warnings.join('\n')).toContain('btcli wallet regen-coldkeypub --wallet.name testcold');
  });

  it('the wallet path defaults to $BT_WALLET_PATH, then ~/.bittensor/wallets, with ~ expanded', () => {
    expect(defaultWalletPath({ BT_WALLET_PATH: '~/keys' })).toBe(join(homedir(), 'keys'));
    expect(defaultWalletPath({})).toBe(join(homedir(), '.bittensor/wallets'));
    expect(walletFiles({ path: '~/w', name: 'c', hotkey: 'h' }).hotkeyFile).toBe(join(homedir(), 'w/c/hotkeys/h'));
  });
});

// Dev wallets are written in the Bittensor on-disk format and load through the production wallet
// loader (src/chain/wallet.ts) from each of their secret fields.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadWallet } from '../../src/chain/wallet.js';
import { writeDevWallet } from '../../src/devnet/wallets.js';

const root = mkdtempSync(join(tmpdir(), 'cnm-devwallet-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('devnet wallets', () => {
  it('write a hotkey the production loader accepts from its phrase, its seed and its privateKey alone', async () => {
    const w = await writeDevWallet(root, 'devnet-x', 'hk');
    expect(statSync(w.hotkeyFile).mode & 0o777).toBe(0o600);
    const full = await loadWallet({ path: root, name: 'devnet-x', hotkey: 'hk' });
    expect(full.hotkeyAddress).toBe(w.hotkey);
    expect(full.coldkeyAddress).toBe(w.coldkey);
    const data = JSON.parse(readFileSync(w.hotkeyFile, 'utf8')) as Record<string, string>;
    expect(Object.keys(data).sort()).toEqual(['accountId', 'privateKey', 'publicKey', 'secretPhrase', 'secretSeed', 'ss58Address']);
    for (const keep of ['secretSeed', 'privateKey']) {
      const only = { accountId: data.accountId, publicKey: data.publicKey, ss58Address: data.ss58Address, [keep]: data[keep] };
      writeFileSync(join(root, 'devnet-x', 'hotkeys', keep), JSON.stringify(only), { mode: 0o600 });
      const w2 = await loadWallet({ path: root, name: 'devnet-x', hotkey: keep });
      expect(w2.hotkeyAddress).toBe(w.hotkey);
      // Same secret: a signature by one verifies under the other's public key.
      const msg = new TextEncoder().encode('devnet');
      expect(full.hotkey.verify(msg, w2.hotkey.sign(msg), full.hotkey.publicKey)).toBe(true);
    }
  });
});

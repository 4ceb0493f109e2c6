// Dev wallets in the Bittensor on-disk format (btwallet 4.x), so the miners of a devnet load their
// keys through exactly the code path of a real run:
//   <root>/<name>/coldkeypub.txt   {"accountId","publicKey","ss58Address"}
//   <root>/<name>/hotkeys/<hotkey> {"accountId","publicKey","privateKey","secretPhrase","secretSeed","ss58Address"} (0600)
// Keys are fresh BIP39 mnemonics: a devnet wallet is throw-away and never holds anything of value.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { u8aEq, u8aToHex } from '@polkadot/util';
import { cryptoWaitReady, encodeAddress, mnemonicGenerate, mnemonicToMiniSecret, sr25519PairFromSeed } from '@polkadot/util-crypto';
import { schnorrkelToPolkadotSecret } from '../chain/wallet.js';

export interface DevWallet {
  name: string;
  hotkeyName: string;
  hotkey: string;
  coldkey: string;
  hotkeyFile: string;
}

/** polkadot-js keeps the sr25519 scalar multiplied by 8; btwallet's `privateKey` holds it plain. */
export function polkadotToSchnorrkelSecret(secret: Uint8Array): Uint8Array {
  if (secret.length !== 64) throw new Error('sr25519 secret key must be 64 bytes');
  let scalar = 0n;
  for (let i = 31; i >= 0; i--) scalar = (scalar << 8n) | BigInt(secret[i]!);
  scalar >>= 3n;
  const out = new Uint8Array(64);
  for (let i = 0; i < 32; i++) out[i] = Number((scalar >> BigInt(8 * i)) & 0xffn);
  out.set(secret.subarray(32, 64), 32);
  return out;
}

function keyfile(pub: Uint8Array, extra: Record<string, string>): string {
  const hex = u8aToHex(pub);
  return JSON.stringify({ accountId: hex, publicKey: hex, ...extra, ss58Address: encodeAddress(pub, 42) });
}

/** Writes wallet `name` with one hotkey `hotkeyName` under `root`. */
export async function writeDevWallet(root: string, name: string, hotkeyName = 'default'): Promise<DevWallet> {
  await cryptoWaitReady();
  const walletDir = join(root, name);
  await mkdir(join(walletDir, 'hotkeys'), { recursive: true, mode: 0o700 });

  const coldPair = sr25519PairFromSeed(mnemonicToMiniSecret(mnemonicGenerate(12)));
  await writeFile(join(walletDir, 'coldkeypub.txt'), keyfile(coldPair.publicKey, {}));

  const phrase = mnemonicGenerate(12);
  const seed = mnemonicToMiniSecret(phrase);
  const hot = sr25519PairFromSeed(seed);
  const privateKey = polkadotToSchnorrkelSecret(hot.secretKey);
  if (!u8aEq(schnorrkelToPolkadotSecret(privateKey), hot.secretKey)) throw new Error('sr25519 key conversion does not round-trip');
  const hotkeyFile = join(walletDir, 'hotkeys', hotkeyName);
  await writeFile(
    hotkeyFile,
    keyfile(hot.publicKey, { privateKey: u8aToHex(privateKey), secretPhrase: phrase, secretSeed: u8aToHex(seed) }),
    { mode: 0o600 },
  );
  await chmod(hotkeyFile, 0o600);
  return { name, hotkeyName, hotkey: encodeAddress(hot.publicKey, 42), coldkey: encodeAddress(coldPair.publicKey, 42), hotkeyFile };
}

// Subtensor access for connito-miner (chain layer). What workers, the supervisor and the devnet use:
//
//   const wallet = await loadWallet({ path, name, hotkey }, { logger });   // Bittensor on-disk wallet
//   wallet.hotkeyAddress; wallet.coldkeyAddress; wallet.hotkey (KeyringPair); wallet.sr25519Pair() (for
//   src/protocol signModelHash/signMessage — holds the secret, never log it)
//
//   const chain = await ChainClient.connect({ url, wallet, logger, metrics, blockTimeMs });
//   chain.onHead((h) => ...)            every new best head {number, hash, seenAt}, across reconnects
//   chain.onStall((e) => ...)           {type:'stalled'|'resumed'} after stallBlocks × blockTimeMs of silence
//   await chain.currentBlock()
//   await chain.allCommitments({ block? })  → { block, blockHash, commitments: [{hotkey, block, data, field}] }
//                                          in storage-key order (bittensor get_all_commitments order)
//   decodeCommitments(snap.commitments, decodeMinerCommit, { logger })
//                                       → [{ok:true, payload} | {ok:false, reason}], skips logged
//   await chain.commitment({ hotkey?, block? })   this hotkey's (default) or another's, or null
//   await chain.setCommitment(json, { timeoutMs?, signal? })  → { blockNumber, blockHash, txHash, nonce, latencyMs }
//   await chain.metagraph({ block? })   → { block, neurons[uid]: {hotkey, coldkey, lastUpdate, validatorPermit,
//                                          stake, incentive, axon: {ip, port, ...}} }
//   await chain.serveAxon({ ip, port })  (skipped when already identical) · chain.setWeights(uids, w, v)
//   await chain.uid() / isRegistered() / axon({ hotkey? })
//   chain.health(); await chain.close()
//
// Every call has a timeout; failures are ChainError (code CNM_ERR_CHAIN_*), wallet problems WalletError
// (+ path), failed extrinsics ChainTxError (+ reason: bad_signature, stale_nonce, nonce_in_use,
// not_registered, rate_limited, invalid, dispatch, dropped, timeout). Writes are one at a time per hotkey.
// Metrics: pass a ChainMetricsSink (rpcError, commitLatency, reconnect, head, headStall).
export { ChainClient, type ChainClientOptions } from './client.js';
export * from './types.js';
export {
  decodeCommitment,
  decodeCommitments,
  readableCommitments,
  type CommitDecoder,
  type DecodeCommitmentsOptions,
  type DecodedCommitment,
} from './commitments.js';
export {
  defaultWalletPath,
  expandHome,
  loadWallet,
  pairFromKeyfile,
  schnorrkelToPolkadotSecret,
  SS58_PREFIX,
  Wallet,
  walletFiles,
  type WalletFiles,
  type WalletSpec,
} from './wallet.js';
export { COMMITMENT_MAX_BYTES, commitmentBytes, decodeUtf8Ignore, ipFromString, ipToString } from './codec.js';
export {
  ChainError,
  ChainTxError,
  isChainError,
  WalletError,
  type ChainErrorCode,
  type TxErrorDetails,
  type TxFailureReason,
} from './errors.js';
export { classifyDispatchError, classifyPoolRejection, SUBTENSOR_CUSTOM_ERRORS } from './tx-errors.js';

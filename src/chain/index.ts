// Subtensor access for connito-miner (chain layer). Everything the workers and the supervisor need:
//
//   const wallet = await loadWallet({ path, name, hotkey }, { logger });      // Bittensor on-disk wallet
//   const chain = await ChainClient.connect({ url, wallet, logger, metrics }); // ApiPromise, self-healing
//   chain.onHead((h) => ...); chain.onStall((e) => ...);                       // head subscription + stall
//   await chain.currentBlock();
//   const snap = await chain.allCommitments({ block });                        // storage-key order
//   const parsed = decodeCommitments(snap.commitments, decodeMinerCommit, { logger });  // skipped + reason
//   await chain.commitment();                                                  // this hotkey's
//   const inc = await chain.setCommitment(json);                              // → { blockNumber, ... }
//   const mg = await chain.metagraph({ block });                              // uid ↔ hotkey, axons, ...
//   await chain.serveAxon({ ip, port }); await chain.isRegistered();
//   await chain.close();
//
// Errors are ChainError (code CNM_ERR_*), WalletError (+ path) and ChainTxError (+ reason).
export { ChainClient, type ChainClientOptions } from './client.js';
export {
  CONNITO_NETUID,
  isAxonServed,
  neuronByHotkey,
  type AxonInfo,
  type ChainMetricsSink,
  type CommitmentRecord,
  type CommitmentSnapshot,
  type HeadInfo,
  type Metagraph,
  type Neuron,
  type ServeAxonResult,
  type StallEvent,
  type TxInclusion,
  type TxOptions,
} from './types.js';
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

// A whole local subnet (DESIGN "Local subnet"): `runDevnet` and its parts. Nothing outside
// src/cli and the tests imports src/devnet.
//
//   runDevnet({ miners, validators, cycles, logger, out, signal, faults, hooks }) → { code, summary, dir }
//   startDevnode (./chain)            the chain node (subtensor JSON-RPC, real metadata)
//   startOwnerService                 the owner phase service (reference endpoints, fault injection)
//   DevValidator, MergeBoard          validators: distribution, submission checks, commits, evaluation, merge
//   Evaluator, prepareDevnetModel     the tiny model, the expert group, held-out loss with the engine
//   MinerProcess                      a miner as a `connito-miner start` child
//   BlockClock                        steady / fast-forward / held block production
//   writeDevWallet                    Bittensor on-disk wallets
export { runDevnet, devnetMinerConfig, DEVNET_BLOCK_MS, DEVNET_PHASES, type DevnetContext, type DevnetOptions, type DevnetResult, type DevnetSummary } from './orchestrator.js';
export { startOwnerService, buildOwnerService, type OwnerService, type OwnerServiceFaults, type OwnerServiceOptions } from './owner-service.js';
export { DevValidator, MergeBoard, type AcceptedSubmission, type DevValidatorOptions, type ValidatorEvent } from './validator.js';
export { Evaluator, prepareDevnetModel, averageExperts, DEVNET_MODEL, DEVNET_DATA, type DevnetModel } from './model.js';
export { MinerProcess, type MinerProcessOptions, type MinerStatus } from './miner-process.js';
export { BlockClock } from './block-clock.js';
export { MultipartParser, multipartBoundary, MultipartError } from './multipart.js';
export { writeDevWallet, type DevWallet } from './wallets.js';
export { startDevnode, type Devnode } from './chain/index.js';

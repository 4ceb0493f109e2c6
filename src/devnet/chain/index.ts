// The devnode: a local subtensor stand-in speaking Substrate JSON-RPC with the real metadata.
//
//   const node = await startDevnode({ genesis, blockMs: 100 });   // node.url = ws://127.0.0.1:PORT
//   ... point the production chain client (src/chain) at node.url ...
//   node.faults.dropConnections(); node.faults.stallBlocks(); node.faults.rejectNextExtrinsic();
//   await node.stop();
//
// Nothing outside src/devnet, src/cli and tests imports this module.
export { startDevnode, type Devnode, type DevnodeFaults, type DevnodeOptions } from './node.js';
export { DevChain, type Block, type HeaderJson, type TxStatus } from './chain.js';
export {
  defaultGenesis,
  genesisSchema,
  GenesisError,
  parseGenesis,
  resolveAccount,
  type Genesis,
  type GenesisInput,
  type GenesisNeuron,
} from './genesis.js';
export { RpcError } from './errors.js';
export { loadChainSpec, metadataPath, METADATA_FILE, type ChainSpec, type RuntimeVersionJson } from './spec.js';

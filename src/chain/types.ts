// Plain data the chain client returns (structured-clone safe: they cross worker-thread boundaries).

/** The reference network id of Connito. */
export const CONNITO_NETUID = 102;

export interface HeadInfo {
  number: number;
  hash: string;
  /** Local wall-clock ms when this client saw it. */
  seenAt: number;
}

/** One `Commitments.CommitmentOf(netuid, hotkey)` entry. */
export interface CommitmentRecord {
  hotkey: string;
  /** Block at which the chain stored this commitment. */
  block: number;
  /**
   * Text of the first field when it is a Raw variant, decoded as bittensor does
   * (`bytes.decode("utf-8", errors="ignore")`); null when the first field is not Raw (unreadable by the
   * reference) or there are no fields.
   */
  data: string | null;
  /** Variant of the first field (`Raw95`, `Sha256`, …), null when there are no fields. */
  field: string | null;
}

export interface CommitmentSnapshot {
  /** The block the snapshot was read at. */
  block: number;
  blockHash: string;
  /** In storage-key order (what bittensor's `get_all_commitments` iterates; PROTOCOL §13 Q1). */
  commitments: CommitmentRecord[];
}

export interface AxonInfo {
  /** As bittensor prints it (`str(netaddr.IPAddress(int))`); "0.0.0.0" when never served. */
  ip: string;
  port: number;
  ipType: number;
  protocol: number;
  version: number;
  /** Block of the last serve_axon (0 = never). */
  block: number;
}

export interface Neuron {
  uid: number;
  hotkey: string;
  coldkey: string;
  active: boolean;
  /** Block of the neuron's last weight set (validators) or registration. */
  lastUpdate: number;
  validatorPermit: boolean;
  /** Sum of the stake entries the runtime reports for the neuron (alpha, rao). */
  stake: bigint;
  /** Incentive in [0, 1]. */
  incentive: number;
  axon: AxonInfo;
}

export interface Metagraph {
  netuid: number;
  block: number;
  blockHash: string;
  /** Indexed by uid. */
  neurons: Neuron[];
}

export interface TxInclusion {
  blockNumber: number;
  blockHash: string;
  txHash: string;
  nonce: number;
  /** Submit → in-block, ms. */
  latencyMs: number;
}

export type ServeAxonResult = ({ skipped: false } & TxInclusion) | { skipped: true; axon: AxonInfo };

export interface TxOptions {
  /** Give up waiting for inclusion after this long (default: the client's txTimeoutMs). */
  timeoutMs?: number;
  /** Abort waiting (the transaction may still land). */
  signal?: AbortSignal;
  /** Override the nonce (default: system_accountNextIndex, which counts the pool). For tools and tests. */
  nonce?: number;
}

/**
 * Where the client reports what the supervisor turns into Prometheus metrics
 * (`chain_rpc_errors_total`, `chain_commit_latency_seconds`, …). Every method is optional.
 */
export interface ChainMetricsSink {
  /** A chain call failed. `op` is the client method (`allCommitments`, `setCommitment`, …). */
  rpcError?(op: string, kind: 'timeout' | 'rpc' | 'disconnected'): void;
  /** Commitment submit → in-block latency, with the outcome. */
  commitLatency?(seconds: number, ok: boolean): void;
  /** The client dropped its connection and built a new API. */
  reconnect?(reason: string): void;
  /** A new best head. */
  head?(block: number): void;
  /** No new head for stallBlocks × blockTime (called once per stall). */
  headStall?(silentSeconds: number): void;
}

export type StallEvent =
  | { type: 'stalled'; lastHead: HeadInfo | null; silentMs: number }
  | { type: 'resumed'; head: HeadInfo; silentMs: number };

/** Find a neuron by hotkey. */
export function neuronByHotkey(mg: Metagraph, hotkey: string): Neuron | undefined {
  return mg.neurons.find((n) => n.hotkey === hotkey);
}

/** True when an axon can be contacted (the reference skips ip "", "0.0.0.0" and port 0). */
export function isAxonServed(a: AxonInfo): boolean {
  return a.ip !== '' && a.ip !== '0.0.0.0' && a.port !== 0;
}

// Subnet rules as pure functions (PROTOCOL.md). No I/O, no processes, no network; the only imports
// of ours are types from `checkpoint`. Everything here is pinned by the golden vectors in
// test/fixtures/vectors (copied from the reference implementation's outputs).
//
// Phases (§1.3–1.5)
//   PHASE_NAMES, PhaseName                     wire strings in cycle order ('Distribute', 'Train', …)
//   scheduleFromLengths(l) / scheduleFromOwnerRoot(json) / scheduleFromPhases(list) → PhaseSchedule
//   CBF3C65_PHASE_LENGTHS, HEAD_PHASE_LENGTHS  reference defaults (offline/telemetry only)
//   phaseAt(s, block) → PhaseResponse          the `/get_phase` fields (snake_case, as on the wire)
//   blocksUntilNextPhase(s, block)             { name: [start, end, blocks_until] }
//   previousPhaseRanges(s, block)              { name: [start, end] }
//   allowedVersionRange(phase, previous, cycles=3) / allowedVersionRangeAt(s, block) → {min, max}
//
// Chain commits (§2)
//   encodeMinerCommit1(sig) / encodeMinerCommit2({b,e,h,v,i}) / encodeValidatorCommit(...)   cbf3c65 bytes
//   encodeHeadMinerCommit1 / encodeHeadMinerCommit2({e,h,v,r,rv})                           HEAD compact
//   all throw ProtocolError CNM_ERR_COMMIT_ENCODE past MAX_COMMIT_BYTES (128)
//   decodeSignatureCommit / decodeMinerCommit / decodeValidatorCommit → {ok, value} | {ok:false, error}
//   commitRole({hotkey, whitelist, lastUpdate, currentBlock}) → 'validator' | 'miner'   (§2.4)
//   parseCommitSnapshot(entries, opts)         one get_all_commitments snapshot, order kept
//
// Assignment (§3)
//   h256Int(...parts): bigint, combinedValidatorSeed(seeds): hex,
//   assignMinersToValidators(seeds, miners, cap?) → Map<validator, miners[]>  (+ …Traced, assignedValidator)
//   interleaveIntSeed, datasetSelectionThreshold, keepDatasetIndex (§9.7)
//
// Hashing and signing (§4)
//   serializeStateDict(src) async chunks; modelHash(src) → Uint8Array(24); modelHashHex(src);
//   ModelHasher (incremental, sorted keys); blake2b192(chunks)
//   toHex/fromHex, base64UrlNoPad/fromBase64UrlNoPad, ss58Decode/ss58Encode/ss58PublicKey
//   blockMessage(target, block) (40 B), modelHashMessage(hex), submissionMessage(raw, target, block),
//   downloadMessage; signMessage(pair, msg), verifyMessage(ss58, msg, sig), signModelHash, verifyModelHash
//
// HTTP requests (§5.1, §6.3)
//   buildSubmitFields({...sign}), buildSubmitMultipart(fields, file, boundary?) → {headers, stream()},
//   buildDownloadFields({...sign}), buildDownloadBody(fields) → {body, headers}
//
// Files and experts (§7.6, §8)
//   parseDynamicFilename(name), checkpointDirName(G, K), validatorCheckpointDirName(uid, hk, G),
//   expertGroupFileName(g), submissionFileName(hk, block)
//   parseExpertAssignment(json), cbf3c65ExpMathAssignment(), getLayerExpertId(name), isExpertParam(name),
//   allowedExpertIds(a, L), localExpertIds(a, L), expertGroupKeys(a, layers), checkExpertGroup(entries, a)
//
// Training schedule (§10.1): cosineWithWarmupMultiplier(step, warmup, total)

export * from './errors.js';
export * from './phases.js';
export * from './commits.js';
export * from './assignment.js';
export * from './pystr.js';
export * from './hashing.js';
export * from './hex.js';
export * from './ss58.js';
export * from './signing.js';
export * from './requests.js';
export * from './filenames.js';
export * from './experts.js';
export * from './schedule.js';

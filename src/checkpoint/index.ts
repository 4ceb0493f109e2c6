// Checkpoint files and directories: the only channel between the trainer (writes) and the workers
// (read, hash, upload). Imports nothing of ours except protocol types (none needed today).
//
// Tensors (tensor.ts)
//   Tensor { dtype, shape, data: Uint8Array (LE, C-contiguous) }, StateDict = Map<string, Tensor>
//   TensorStore { keys(), info(key), load(key) }: lazy sources (.pt/.safetensors readers); TensorSource
//   = StateDict | TensorStore — every hasher/writer takes either and holds one tensor at a time.
//   itemsize, numel, byteLength, makeTensor, tensorFromValues, toFloat64Array, castTensor,
//   f32ToF16Bits/f16BitsToF32, f32ToBf16Bits/bf16BitsToF32 (round-to-nearest-even), isAllFinite,
//   tensorsEqual, storeOf
//
// .pt (pt.ts) — PyTorch's zip format, byte-compatible with torch 1.13's torch.save
//   writePt(path, src, { wrap=true ({"model_state_dict": sd}), orderedDict=false, prefix=<stem>,
//           byteorder=true, fsync=true, sha256?, forceZip64? }) → { bytes, sha256 }
//   PtFile.open(path, limits?) → TensorStore (+ layout 'model_state_dict'|'bare', ordered, close())
//   readPt(path, limits?) → Map (+ layout) — whole file in memory, bounded by maxTotalBytes
//   The reader is an allow-list unpickler (pickle.ts): forbidden opcodes/globals, bounds and limits
//   raise CheckpointError (CNM_ERR_PICKLE_FORBIDDEN, CNM_ERR_PT_FORMAT, CNM_ERR_PT_BOUNDS,
//   CNM_ERR_LIMIT, CNM_ERR_PT_CRC, CNM_ERR_NOT_STATE_DICT; CNM_ERR_CKPT_IO for fs failures); nothing
//   in a file is ever executed.
//
// .safetensors (safetensors.ts)
//   SafetensorsFile.open(path) → TensorStore (+ metadata, close()); readSafetensors; writeSafetensors
//
// Checkpoint directories (dir.ts)
//   names: ownCheckpointName(G, K) = globalver_G_inneropt_K, validatorCheckpointName(uid, hk, G),
//          globalCheckpointName(G) = globalver_G (a validator's own merged model),
//          parseCheckpointName, expertFileName(g) = model_expgroup_g.pt, compareCheckpoints
//   write: beginCheckpoint(parent, name) → PendingCheckpoint { path, writePt(file, sd), filePath(file)
//          + addFile(file), commit({expert_group, model_hash, run_id, base_version, extra}), abort() }
//          writeCheckpoint(parent, name, files, meta) does all of it. Files land in `.tmp_<name>`,
//          are fsynced, the manifest (connito-manifest.json: sizes, sha256, versions, model hash, run
//          id, base version, created_at) is written last, then rename + fsync of the parent.
//   read:  readCheckpoint(dir, {verifyHashes}), listCheckpoints(parent) (complete only, newest first),
//          selectBestCheckpoint(primary, secondary?) (reference order; primary wins ties)
//   pins:  pinCheckpoint(dir) / pinBestCheckpoint(primary, secondary) → { checkpoint, release() }
//          (a pin file naming this pid; dead pids' pins are ignored), isPinned(dir)
//   retention: pruneCheckpoints(parent, keep) never deletes the newest or a pinned checkpoint;
//          cleanupCheckpointDir(parent) removes dead writers' temp dirs and dead pins at start-up.
//   openExpertFile(dir, g) → lazy store of model_expgroup_g.pt (empty store if missing) to feed
//          protocol's modelHash(); close() it after use.
//
// Typical flows
//   trainer:  writeCheckpoint(ownDir, ownCheckpointName(G, K), [{ file: expertFileName(g), stateDict }],
//             { expert_group: g, run_id, base_version }); then pruneCheckpoints(ownDir, topk).
//   download: p = await beginCheckpoint(validatorDir, validatorCheckpointName(uid, hk, G)); stream the
//             body to p.filePath(expertFileName(g)); await p.addFile(...); verify it (PtFile.open +
//             protocol modelHash / checkExpertGroup / verifyModelHash); then p.commit(...) or p.abort()
//             — an unverified download never becomes visible (unlike the reference, §13.2 #5).
//   commit/submit: pin = await pinBestCheckpoint(ownDir); hash openExpertFile(pin.checkpoint.path, g);
//             keep the pin until the Submission upload ends (§13.2 #6), then pin.release().
//   start-up: cleanupCheckpointDir(dir) for each checkpoint parent.

export * from './tensor.js';
export * from './errors.js';
export {
  PtFile,
  readPt,
  writePt,
  stateDictPickle,
  contiguousStrides,
  type PtReadOptions,
  type PtWriteOptions,
  type PtWriteResult,
  type PtLayout,
  type StateDictWithLayout,
} from './pt.js';
export { DEFAULT_PICKLE_LIMITS, STORAGE_DTYPES, isAllowedGlobal, unpickle, type PickleLimits } from './pickle.js';
export { DEFAULT_ZIP_LIMITS, FIELD_ALIGNMENT, type ZipLimits } from './zip.js';
export { SafetensorsFile, readSafetensors, writeSafetensors, SAFETENSORS_MAX_HEADER } from './safetensors.js';
export * from './dir.js';

// An allow-list unpickler for weights-only torch checkpoints. It interprets pickle opcodes as data
// only: globals are looked up in a fixed table of names and never resolved to anything executable,
// REDUCE/BUILD accept exactly the callables a state dict needs, and anything else fails with a typed
// error naming the opcode or global. Every read is bounds-checked and every structure is bounded.
import { CheckpointError } from './errors.js';
import type { DType } from './tensor.js';

/** Storage classes torch writes in persistent ids, and the dtype each one holds. */
export const STORAGE_DTYPES: Readonly<Record<string, DType>> = Object.freeze({
  'torch.DoubleStorage': 'float64',
  'torch.FloatStorage': 'float32',
  'torch.HalfStorage': 'float16',
  'torch.BFloat16Storage': 'bfloat16',
  'torch.LongStorage': 'int64',
  'torch.IntStorage': 'int32',
  'torch.ShortStorage': 'int16',
  'torch.CharStorage': 'int8',
  'torch.ByteStorage': 'uint8',
  'torch.BoolStorage': 'bool',
});

const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._tensor._rebuild_from_type_v2',
]);
// Types that may appear as arguments of `_rebuild_from_type_v2` but are never called.
const TENSOR_TYPES = new Set(['torch._tensor.Tensor', 'torch.Tensor', 'torch.nn.parameter.Parameter']);

export function isAllowedGlobal(name: string): boolean {
  return CALLABLES.has(name) || TENSOR_TYPES.has(name) || name in STORAGE_DTYPES;
}

// ---------------------------------------------------------------------------------------------
// The values an unpickled weights file can hold.

export class PTuple {
  constructor(readonly items: PValue[]) {}
}
export class PList {
  constructor(readonly items: PValue[]) {}
}
export type PKey = string | number | bigint | boolean | null;
export class PDict {
  readonly map = new Map<PKey, PValue>();
  /** Attributes set by BUILD (e.g. `_metadata` of a module state dict); kept, never interpreted. */
  state: PValue = null;
  constructor(readonly ordered: boolean) {}
}
export class PGlobal {
  constructor(readonly name: string) {}
}
export class PStorage {
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly numel: number,
    readonly location: string,
  ) {}
}
export class PTensor {
  constructor(
    readonly storage: PStorage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}
export type PValue = null | boolean | number | bigint | string | PTuple | PList | PDict | PGlobal | PStorage | PTensor;

export interface PickleLimits {
  /** Largest data.pkl accepted. */
  maxBytes: number;
  /** Deepest container nesting (a state dict in a dict is 2). */
  maxDepth: number;
  /** Most memo entries. */
  maxMemo: number;
  /** Largest number of values on the stack at once. */
  maxStack: number;
  /** Most tensors rebuilt. */
  maxTensors: number;
  /** Most dimensions of one tensor. */
  maxDims: number;
}

export const DEFAULT_PICKLE_LIMITS: PickleLimits = {
  maxBytes: 64 << 20,
  maxDepth: 32,
  maxMemo: 4_000_000,
  maxStack: 4_000_000,
  maxTensors: 1_000_000,
  maxDims: 64,
};

const OPNAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID',
  0x51: 'BINPERSID', 0x52: 'REDUCE', 0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND', 0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT',
  0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET', 0x69: 'INST', 0x6a: 'LONG_BINGET',
  0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT', 0x72: 'LONG_BINPUT',
  0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4',
  0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL',
  0x94: 'MEMOIZE', 0x95: 'FRAME', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

export function opcodeName(op: number): string {
  return OPNAMES[op] ?? `0x${op.toString(16).padStart(2, '0')}`;
}


const utf8 = new TextDecoder('utf-8', { fatal: true });

function depthOf(v: PValue): number {
  if (v instanceof PTuple || v instanceof PList) return DEPTH.get(v) ?? 1;
  if (v instanceof PDict) return DEPTH.get(v) ?? 1;
  return 0;
}
const DEPTH = new WeakMap<object, number>();

/**
 * Unpickles `data` (a torch `data.pkl`). Persistent ids must be ('storage', <StorageClass>, key,
 * location, numel) tuples; they become PStorage values (nothing is read here).
 */
export function unpickle(data: Uint8Array, path: string, limits: PickleLimits = DEFAULT_PICKLE_LIMITS): PValue {
  if (data.length > limits.maxBytes) {
    throw new CheckpointError('CNM_ERR_LIMIT', `data.pkl is ${data.length} bytes (limit ${limits.maxBytes})`, path);
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const stack: PValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PValue>();
  let pos = 0;
  let tensors = 0;
  let op = 0;
  let opAt = 0;

  const fmt = (why: string): never => {
    throw new CheckpointError('CNM_ERR_PICKLE_FORMAT', `malformed pickle at byte ${opAt} (${opcodeName(op)}): ${why}`, path);
  };
  const forbid = (why: string): never => {
    throw new CheckpointError('CNM_ERR_PICKLE_FORBIDDEN', `refused pickle at byte ${opAt}: ${why}; only weights-only torch checkpoints are accepted`, path);
  };
  const need = (n: number): number => {
    if (n < 0 || pos + n > data.length) fmt(`needs ${n} bytes, ${data.length - pos} left`);
    const at = pos;
    pos += n;
    return at;
  };
  const push = (v: PValue): void => {
    if (stack.length >= limits.maxStack) throw new CheckpointError('CNM_ERR_LIMIT', `pickle stack exceeds ${limits.maxStack} values`, path);
    stack.push(v);
  };
  const pop = (): PValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) fmt('stack underflow');
    return stack.pop()!;
  };
  const top = (): PValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) return fmt('stack underflow');
    return v;
  };
  const popMark = (): PValue[] => {
    const m = marks.pop();
    if (m === undefined) return fmt('no MARK on the stack');
    return stack.splice(m);
  };
  const container = <T extends PTuple | PList | PDict>(c: T, children: Iterable<PValue>): T => {
    let d = 0;
    for (const ch of children) d = Math.max(d, depthOf(ch));
    if (d + 1 > limits.maxDepth) throw new CheckpointError('CNM_ERR_LIMIT', `pickle nesting exceeds depth ${limits.maxDepth}`, path);
    DEPTH.set(c, d + 1);
    return c;
  };
  const memoPut = (idx: number, v: PValue): void => {
    if (!memo.has(idx) && memo.size >= limits.maxMemo) throw new CheckpointError('CNM_ERR_LIMIT', `pickle memo exceeds ${limits.maxMemo} entries`, path);
    memo.set(idx, v);
  };
  const memoGet = (idx: number): PValue => {
    if (!memo.has(idx)) fmt(`memo entry ${idx} was never stored`);
    return memo.get(idx)!;
  };
  const dictKey = (k: PValue): PKey => {
    if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return k;
    return fmt(`dict key of type ${k.constructor.name} is not supported`);
  };
  const setItems = (d: PValue, items: PValue[]): void => {
    if (!(d instanceof PDict)) return fmt('SETITEM(S) on something that is not a dict');
    if (items.length % 2 !== 0) fmt('odd number of values for SETITEMS');
    for (let i = 0; i < items.length; i += 2) d.map.set(dictKey(items[i]!), items[i + 1]!);
    const dd = DEPTH.get(d) ?? 1;
    let child = 0;
    for (let i = 1; i < items.length; i += 2) child = Math.max(child, depthOf(items[i]!));
    if (child + 1 > limits.maxDepth) throw new CheckpointError('CNM_ERR_LIMIT', `pickle nesting exceeds depth ${limits.maxDepth}`, path);
    DEPTH.set(d, Math.max(dd, child + 1));
  };
  const appendItems = (l: PValue, items: PValue[]): void => {
    if (!(l instanceof PList)) return fmt('APPEND(S) on something that is not a list');
    l.items.push(...items);
    let child = 0;
    for (const it of items) child = Math.max(child, depthOf(it));
    if (child + 1 > limits.maxDepth) throw new CheckpointError('CNM_ERR_LIMIT', `pickle nesting exceeds depth ${limits.maxDepth}`, path);
    DEPTH.set(l, Math.max(DEPTH.get(l) ?? 1, child + 1));
  };
  const global = (module: string, name: string): PGlobal => {
    const full = `${module}.${name}`;
    if (!isAllowedGlobal(full)) forbid(`global ${JSON.stringify(full)} is not on the allow-list`);
    return new PGlobal(full);
  };
  const intArg = (v: PValue, what: string): number => {
    const n = typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return fmt(`${what} must be a non-negative integer`);
    return n;
  };
  const intTuple = (v: PValue, what: string): number[] => {
    if (!(v instanceof PTuple)) return fmt(`${what} must be a tuple`);
    if (v.items.length > limits.maxDims) throw new CheckpointError('CNM_ERR_LIMIT', `${what} has ${v.items.length} dimensions (limit ${limits.maxDims})`, path);
    return v.items.map((x) => intArg(x, `${what} entry`));
  };
  const rebuildTensor = (args: PValue[], fn: string): PTensor => {
    if (args.length < 4) return fmt(`${fn} needs at least 4 arguments, got ${args.length}`);
    const [storage, offset, size, stride] = args;
    if (!(storage instanceof PStorage)) return fmt(`${fn}: first argument is not a storage`);
    if (++tensors > limits.maxTensors) throw new CheckpointError('CNM_ERR_LIMIT', `more than ${limits.maxTensors} tensors`, path);
    return new PTensor(storage, intArg(offset!, 'storage offset'), intTuple(size!, 'size'), intTuple(stride!, 'stride'));
  };
  const reduce = (fn: PValue, argsV: PValue): PValue => {
    if (!(fn instanceof PGlobal)) return forbid('REDUCE on a value that is not an allowed global');
    if (!CALLABLES.has(fn.name)) return forbid(`REDUCE on ${fn.name} is not allowed`);
    if (!(argsV instanceof PTuple)) return fmt('REDUCE arguments are not a tuple');
    const args = argsV.items;
    switch (fn.name) {
      case 'collections.OrderedDict':
        if (args.length !== 0) return forbid('OrderedDict(...) with arguments is not allowed');
        return container(new PDict(true), []);
      case 'torch._utils._rebuild_tensor':
      case 'torch._utils._rebuild_tensor_v2':
        return rebuildTensor(args, fn.name);
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state': {
        const t = args[0];
        if (!(t instanceof PTensor)) return fmt(`${fn.name}: first argument is not a tensor`);
        return t;
      }
      case 'torch._tensor._rebuild_from_type_v2': {
        const [inner, type, innerArgs] = args;
        if (!(inner instanceof PGlobal) || inner.name !== 'torch._utils._rebuild_tensor_v2') {
          return forbid(`_rebuild_from_type_v2 with ${inner instanceof PGlobal ? inner.name : 'a non-global'} is not allowed`);
        }
        if (!(type instanceof PGlobal) || !TENSOR_TYPES.has(type.name)) return forbid('_rebuild_from_type_v2 with a non-tensor type');
        if (!(innerArgs instanceof PTuple)) return fmt('_rebuild_from_type_v2 arguments are not a tuple');
        return rebuildTensor(innerArgs.items, inner.name);
      }
      default:
        return forbid(`REDUCE on ${fn.name} is not allowed`);
    }
  };
  const persistent = (pid: PValue): PStorage => {
    if (!(pid instanceof PTuple) || pid.items.length !== 5 || pid.items[0] !== 'storage') {
      return forbid('persistent id is not a (\'storage\', type, key, location, numel) tuple');
    }
    const [, type, key, location, numel] = pid.items;
    if (!(type instanceof PGlobal) || !(type.name in STORAGE_DTYPES)) return forbid('persistent id names no storage type');
    if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(key)) return fmt('storage key must be a short plain string');
    if (typeof location !== 'string') return fmt('storage location must be a string');
    return new PStorage(key, STORAGE_DTYPES[type.name]!, intArg(numel!, 'storage numel'), location);
  };
  const str = (at: number, n: number): string => {
    try {
      return utf8.decode(data.subarray(at, at + n));
    } catch {
      return fmt('string is not valid UTF-8');
    }
  };

  for (;;) {
    opAt = pos;
    op = data[need(1)]!;
    switch (op) {
      case 0x80: { // PROTO
        const v = data[need(1)]!;
        if (v > 5) fmt(`unsupported protocol ${v}`);
        break;
      }
      case 0x95: need(8); break; // FRAME: only a hint
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length !== 0) fmt(`STOP with ${stack.length} values on the stack`);
        return stack[0]!;
      }
      case 0x28: // MARK
        if (marks.length >= limits.maxDepth * 2) throw new CheckpointError('CNM_ERR_LIMIT', `more than ${limits.maxDepth * 2} nested MARKs`, path);
        marks.push(stack.length);
        break;
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break;
      case 0x89: push(false); break;
      case 0x4a: push(dv.getInt32(need(4), true)); break; // BININT
      case 0x4b: push(data[need(1)]!); break; // BININT1
      case 0x4d: push(dv.getUint16(need(2), true)); break; // BININT2
      case 0x8a: { // LONG1
        const n = data[need(1)]!;
        const at = need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[at + i]!);
        if (n > 0 && data[at + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: push(dv.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x58: { // BINUNICODE
        const n = dv.getUint32(need(4), true);
        push(str(need(n), n));
        break;
      }
      case 0x8c: { // SHORT_BINUNICODE
        const n = data[need(1)]!;
        push(str(need(n), n));
        break;
      }
      case 0x8d: { // BINUNICODE8
        const big = dv.getBigUint64(need(8), true);
        if (big > BigInt(data.length)) fmt('string length past the end');
        const n = Number(big);
        push(str(need(n), n));
        break;
      }
      case 0x29: push(container(new PTuple([]), [])); break; // EMPTY_TUPLE
      case 0x74: { const items = popMark(); push(container(new PTuple(items), items)); break; } // TUPLE
      case 0x85: case 0x86: case 0x87: { // TUPLE1..3
        const n = op - 0x84;
        const items: PValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        push(container(new PTuple(items), items));
        break;
      }
      case 0x5d: push(container(new PList([]), [])); break; // EMPTY_LIST
      case 0x6c: { const items = popMark(); push(container(new PList(items), items)); break; } // LIST
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x7d: push(container(new PDict(false), [])); break; // EMPTY_DICT
      case 0x64: { const items = popMark(); const d = container(new PDict(false), []); setItems(d, items); push(d); break; } // DICT
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x63: { // GLOBAL "module\nname\n"
        const readLine = (): string => {
          const end = data.indexOf(0x0a, pos);
          if (end < 0 || end - pos > 256) return fmt('GLOBAL name is not a short line');
          const s = str(pos, end - pos);
          pos = end + 1;
          return s;
        };
        const module = readLine();
        const name = readLine();
        push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fmt('STACK_GLOBAL needs two strings');
        push(global(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); push(reduce(fn, args)); break; } // REDUCE
      case 0x62: { // BUILD: only attribute state on a dict (e.g. OrderedDict._metadata)
        const state = pop();
        const obj = top();
        if (!(obj instanceof PDict)) return forbid(`BUILD on ${obj === null ? 'None' : typeof obj === 'object' ? obj.constructor.name : typeof obj} is not allowed`);
        if (!(state instanceof PDict)) return forbid('BUILD with a state that is not a dict');
        obj.state = state;
        break;
      }
      case 0x51: push(persistent(pop())); break; // BINPERSID
      case 0x68: push(memoGet(data[need(1)]!)); break; // BINGET
      case 0x6a: push(memoGet(dv.getUint32(need(4), true))); break; // LONG_BINGET
      case 0x71: memoPut(data[need(1)]!, top()); break; // BINPUT
      case 0x72: memoPut(dv.getUint32(need(4), true), top()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size, top()); break; // MEMOIZE
      default:
        if (OPNAMES[op] === undefined) fmt(`unknown opcode 0x${op.toString(16)}`);
        forbid(`opcode ${opcodeName(op)} is not allowed`);
    }
  }
}

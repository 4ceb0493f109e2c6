// A small deterministic PRNG whose whole state is four uint32 words, so the data pipeline can put it
// in a checkpoint and resume exactly where it stopped (Math.random cannot do that). xoshiro128**
// (Blackman & Vigna): fast, well distributed, 2^128 − 1 period; seeded through splitmix32 so that
// nearby seeds give unrelated streams.

export type RngState = [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** FNV-1a over the UTF-16 code units of a string: turns a textual seed into 32 bits. */
export function hashString32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Mixes several integers (e.g. seed, source id, row index) into one 32-bit seed. */
export function mixSeed(...parts: number[]): number {
  let h = 0x2545f491;
  for (const p of parts) {
    // Split the part into two 32-bit halves so that indices above 2^32 still differ.
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    h = splitmix32(h ^ lo)();
    h = splitmix32(h ^ hi)();
  }
  return h >>> 0;
}

export class Rng {
  private s: RngState;

  private constructor(state: RngState) {
    this.s = state;
  }

  static fromSeed(seed: number | string): Rng {
    const sm = splitmix32(typeof seed === 'string' ? hashString32(seed) : mixSeed(seed));
    const st: RngState = [sm(), sm(), sm(), sm()];
    // The all-zero state is the one fixed point of xoshiro; splitmix32 never yields four zeros in a
    // row, but guard anyway.
    if ((st[0] | st[1] | st[2] | st[3]) === 0) st[0] = 1;
    return new Rng(st);
  }

  static fromState(state: readonly number[]): Rng {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new RangeError(`rng state must be four uint32 values, got ${JSON.stringify(state)}`);
    }
    if (state.every((v) => v === 0)) throw new RangeError('rng state must not be all zero');
    return new Rng([state[0]!, state[1]!, state[2]!, state[3]!]);
  }

  state(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

  /** Next uint32. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] = (s[2] ^ s[0]) >>> 0;
    s[3] = (s[3] ^ s[1]) >>> 0;
    s[1] = (s[1] ^ s[2]) >>> 0;
    s[0] = (s[0] ^ s[3]) >>> 0;
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** Standard normal sample (Box–Muller; one of the pair is discarded to keep the state simple). */
  normal(): number {
    let u = this.next();
    while (u <= 0) u = this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

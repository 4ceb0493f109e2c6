// A deterministic synthetic "math" corpus: arithmetic word problems with worked answers, in the
// spirit of the exp_math expert group's data. Document `i` of seed `s` is a pure function of (s, i),
// so a source built on it needs no files, can seek anywhere in O(1) and never runs dry — which is
// what the devnet and the tests need. The answers are computed, not templated, so a model can
// actually learn something (the loss goes down), and `checkMathDocument` can verify any document.
import { Rng, mixSeed } from './rng.js';

const NAMES = ['Ada', 'Ben', 'Chen', 'Dara', 'Eli', 'Fatima', 'Goran', 'Hana', 'Ivan', 'Júlia', 'Kofi', 'Lena', 'Mateo', 'Noor', 'Olu', 'Priya'];
const ITEMS = ['apples', 'books', 'coins', 'marbles', 'pencils', 'stamps', 'shells', 'cards', 'eggs', 'bricks'];
const CONTAINERS = ['boxes', 'bags', 'baskets', 'crates', 'jars'];

export interface MathProblem {
  question: string;
  /** The worked solution, ending in `The answer is N.` */
  solution: string;
  answer: number;
}

/** One problem, a pure function of the rng's state. */
export function mathProblem(rng: Rng): MathProblem {
  const name = rng.pick(NAMES);
  const item = rng.pick(ITEMS);
  switch (rng.int(0, 5)) {
    case 0: {
      const a = rng.int(2, 99);
      const b = rng.int(2, 99);
      const answer = a + b;
      return {
        question: `${name} has ${a} ${item} and finds ${b} more. How many ${item} does ${name} have now?`,
        solution: `${a} + ${b} = ${answer}. The answer is ${answer}.`,
        answer,
      };
    }
    case 1: {
      const a = rng.int(20, 199);
      const b = rng.int(1, a - 1);
      const answer = a - b;
      return {
        question: `${name} had ${a} ${item} and gave away ${b}. How many ${item} are left?`,
        solution: `${a} - ${b} = ${answer}. The answer is ${answer}.`,
        answer,
      };
    }
    case 2: {
      const a = rng.int(2, 12);
      const b = rng.int(2, 25);
      const box = rng.pick(CONTAINERS);
      const answer = a * b;
      return {
        question: `${name} has ${a} ${box} with ${b} ${item} in each. How many ${item} is that in total?`,
        solution: `${a} * ${b} = ${answer}. The answer is ${answer}.`,
        answer,
      };
    }
    case 3: {
      const k = rng.int(2, 9);
      const answer = rng.int(2, 30);
      const total = k * answer;
      const friend = rng.pick(NAMES.filter((n) => n !== name));
      return {
        question: `${name} shares ${total} ${item} equally among ${k} friends, including ${friend}. How many ${item} does each friend get?`,
        solution: `${total} / ${k} = ${answer}. The answer is ${answer}.`,
        answer,
      };
    }
    case 4: {
      const a = rng.int(5, 60);
      const b = rng.int(2, 9);
      const c = rng.int(1, 40);
      const mid = a * b;
      const answer = mid + c;
      return {
        question: `${name} buys ${b} packs of ${a} ${item} and then gets ${c} loose ones. How many ${item} does ${name} have?`,
        solution: `${b} * ${a} = ${mid}. ${mid} + ${c} = ${answer}. The answer is ${answer}.`,
        answer,
      };
    }
    default: {
      const a = rng.int(10, 500);
      const b = rng.int(10, 500);
      const c = rng.int(1, Math.min(a + b - 1, 300));
      const mid = a + b;
      const answer = mid - c;
      return {
        question: `A shop has ${a} ${item} on Monday and receives ${b} on Tuesday. It sells ${c}. How many ${item} remain?`,
        solution: `${a} + ${b} = ${mid}. ${mid} - ${c} = ${answer}. The answer is ${answer}.`,
        answer,
      };
    }
  }
}

export interface MathDocumentOptions {
  /** Problems per document (default 4). */
  problems?: number;
}

/** Document `index` of the corpus with seed `seed`. */
export function mathDocument(seed: number, index: number, opts: MathDocumentOptions = {}): string {
  const n = opts.problems ?? 4;
  const rng = Rng.fromSeed(mixSeed(seed, index));
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = mathProblem(rng);
    parts.push(`Question: ${p.question}\nAnswer: ${p.solution}`);
  }
  return parts.join('\n\n');
}

/**
 * Verifies every equation `a op b = c` in a document; returns the number checked. Throws on a wrong
 * one. Lets tests prove the generator's answers are right rather than assume it.
 */
export function checkMathDocument(doc: string): number {
  const re = /(\d+) ([-+*/]) (\d+) = (\d+)\./g;
  let count = 0;
  for (const m of doc.matchAll(re)) {
    const a = Number(m[1]);
    const b = Number(m[3]);
    const c = Number(m[4]);
    const want = m[2] === '+' ? a + b : m[2] === '-' ? a - b : m[2] === '*' ? a * b : a / b;
    if (want !== c) throw new Error(`wrong equation in synthetic document: ${m[0]}`);
    count++;
  }
  return count;
}

/** Lines of a JSONL corpus (`{"text": ...}`), for writing files the devnet or a test can point at. */
export function* mathJsonlLines(seed: number, count: number, opts: MathDocumentOptions = {}): Generator<string> {
  for (let i = 0; i < count; i++) yield JSON.stringify({ text: mathDocument(seed, i, opts) });
}

// Tokenizers of the data pipeline. A Hugging Face `tokenizer.json` (+ `tokenizer_config.json`) in
// the model directory is used through @huggingface/tokenizers (pure JS, no network); without one
// the pipeline falls back to a byte-level tokenizer (UTF-8 bytes 0–255 plus three specials) — the
// tiny devnet/test models ship no tokenizer.
//
// Special tokens follow PROTOCOL.md §9.7: the reference tokenises with `add_special_tokens=True`
// (for DeepSeek-V2: a BOS in front, no EOS), pads to `sequence_length` with the pad token and sets
// the label of every position equal to the pad id to −100.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { TrainerError } from '../errors.js';

export interface TextTokenizer {
  readonly kind: 'byte' | 'hf';
  /** One past the largest id this tokenizer can produce. */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number;
  /** Token ids of `text` with the special tokens the model was trained with. */
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** Where it came from, for logs. */
  readonly source: string;
}

export const BYTE_BOS = 256;
export const BYTE_EOS = 257;
export const BYTE_PAD = 258;
export const BYTE_VOCAB = 259;

export class ByteTokenizer implements TextTokenizer {
  readonly kind = 'byte' as const;
  readonly vocabSize = BYTE_VOCAB;
  readonly bosId = BYTE_BOS;
  readonly eosId = BYTE_EOS;
  readonly padId = BYTE_PAD;
  readonly source = 'byte-level';
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder();

  encode(text: string): number[] {
    const bytes = this.enc.encode(text);
    const out = new Array<number>(bytes.length + 1);
    out[0] = BYTE_BOS;
    for (let i = 0; i < bytes.length; i++) out[i + 1] = bytes[i]!;
    return out;
  }

  decode(ids: readonly number[]): string {
    return this.dec.decode(Uint8Array.from(ids.filter((i) => i < 256)));
  }
}

type TokenSpec = string | { content?: unknown } | null | undefined;

function tokenContent(t: TokenSpec): string | null {
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && typeof t.content === 'string') return t.content;
  return null;
}

export class HfTokenizer implements TextTokenizer {
  readonly kind = 'hf' as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number;
  readonly source: string;
  private readonly tok: Tokenizer;
  // transformers' Llama-family fast tokenizers rebuild the post-processor from add_bos_token /
  // add_eos_token at load time, overriding tokenizer.json; when the config states them we apply
  // them ourselves to get the same ids.
  private readonly addBos: boolean | null;
  private readonly addEos: boolean | null;

  constructor(tokenizerJson: object, tokenizerConfig: Record<string, unknown>, source: string) {
    this.source = source;
    this.tok = new Tokenizer(tokenizerJson, tokenizerConfig);
    const idOf = (spec: TokenSpec): number | null => {
      const c = tokenContent(spec);
      if (c === null) return null;
      const id = this.tok.token_to_id(c);
      return id === undefined ? null : id;
    };
    this.bosId = idOf(tokenizerConfig.bos_token as TokenSpec);
    this.eosId = idOf(tokenizerConfig.eos_token as TokenSpec);
    const pad = idOf(tokenizerConfig.pad_token as TokenSpec) ?? this.eosId;
    if (pad === null) {
      throw new TrainerError(
        'CNM_ERR_TOKENIZER',
        `${source}: the tokenizer has neither a pad_token nor an eos_token in tokenizer_config.json; add "pad_token" to that file`,
      );
    }
    this.padId = pad;
    this.addBos = typeof tokenizerConfig.add_bos_token === 'boolean' ? tokenizerConfig.add_bos_token : null;
    this.addEos = typeof tokenizerConfig.add_eos_token === 'boolean' ? tokenizerConfig.add_eos_token : null;
    let max = -1;
    for (const id of this.tok.get_vocab(true).values()) if (id > max) max = id;
    this.vocabSize = max + 1;
  }

  encode(text: string): number[] {
    if (this.addBos === null && this.addEos === null) {
      return this.tok.encode(text, { add_special_tokens: true }).ids;
    }
    const ids = this.tok.encode(text, { add_special_tokens: false }).ids;
    if (this.addBos === true && this.bosId !== null) ids.unshift(this.bosId);
    if (this.addEos === true && this.eosId !== null) ids.push(this.eosId);
    return ids;
  }

  decode(ids: readonly number[]): string {
    return this.tok.decode([...ids], { skip_special_tokens: true });
  }
}

export interface TokenizerSpec {
  /** 'auto': the model directory's tokenizer.json when present, else byte-level. */
  kind: 'auto' | 'byte' | 'hf';
  /** Directory holding tokenizer.json / tokenizer_config.json (the base model directory). */
  dir?: string | undefined;
  /** An explicit tokenizer.json path (data.tokenizer_path); its tokenizer_config.json sits beside it. */
  file?: string | undefined;
}

function readJsonFile(path: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TrainerError('CNM_ERR_TOKENIZER', `cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new TrainerError(
      'CNM_ERR_TOKENIZER',
      `${path} is not valid JSON (${(e as Error).message}); replace it with the model's original ${what} or remove it to use the byte-level tokenizer`,
      { cause: e },
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TrainerError('CNM_ERR_TOKENIZER', `${path}: expected a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Loads the tokenizer the spec asks for. Errors name the file and say what to do. */
export function loadTokenizer(spec: TokenizerSpec): TextTokenizer {
  const jsonPath = spec.file ?? (spec.dir !== undefined ? join(spec.dir, 'tokenizer.json') : undefined);
  const useHf = spec.kind === 'hf' || (spec.kind === 'auto' && jsonPath !== undefined && existsSync(jsonPath));
  if (!useHf) return new ByteTokenizer();
  if (jsonPath === undefined) {
    throw new TrainerError('CNM_ERR_TOKENIZER', 'a Hugging Face tokenizer was asked for but neither data.tokenizer_path nor model.base_path is set');
  }
  const tj = readJsonFile(jsonPath, 'tokenizer.json');
  if (typeof tj.model !== 'object' || tj.model === null) {
    throw new TrainerError('CNM_ERR_TOKENIZER', `${jsonPath}: no "model" section; this is not a Hugging Face tokenizer.json`);
  }
  const cfgPath = join(dirname(jsonPath), 'tokenizer_config.json');
  const tc = existsSync(cfgPath) ? readJsonFile(cfgPath, 'tokenizer_config.json') : {};
  try {
    const t = new HfTokenizer(tj, tc, jsonPath);
    // Smoke test: a tokenizer that cannot encode ASCII would fail on every row later.
    t.encode('1 + 1 = 2');
    return t;
  } catch (e) {
    if (e instanceof TrainerError) throw e;
    throw new TrainerError('CNM_ERR_TOKENIZER', `${jsonPath} could not be loaded (${(e as Error).message}); replace it with the model's original file or remove it to use the byte-level tokenizer`, { cause: e });
  }
}

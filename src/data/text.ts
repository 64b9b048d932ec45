/**
 * Text data for character-level language models: a character vocabulary and seeded batchers.
 *
 * Characters are Unicode code points (not UTF-16 units), so 'é', '—' or an emoji is one token, and
 * every position in an error message counts code points from 0.
 *
 * Unknown characters: a vocabulary built without `unk` rejects them at encode time with a
 * `VocabError` naming the character (and its code point) and its position. A vocabulary built with
 * `unk` (one character that becomes a token of its own) maps every unknown character to that token
 * instead; decoding then gives the `unk` character back.
 *
 * Batches are time-major, as the recurrent layers expect: `inputs[t·B + b]` is the character at
 * step t of sequence b, and `targets` holds the character that follows each input.
 */
import { Rng } from '../tensor/rng.ts';

export class VocabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VocabError';
  }
}

/** The JSON form of a CharVocab (what `toJSON` writes and `fromJSON` reads). */
export interface CharVocabJSON {
  /** One entry per token id; each is a single code point. */
  chars: string[];
  /** The unknown-character token, or null when unknown characters are an error. */
  unk: string | null;
}

export interface CharVocabOptions {
  /** A character to use as the token for unknown characters (added to the vocabulary). */
  unk?: string;
}

function describeChar(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return `${JSON.stringify(ch)} (${hex})`;
}

function isOneCodePoint(s: unknown): s is string {
  if (typeof s !== 'string' || s.length === 0 || s.length > 2) return false;
  return [...s].length === 1;
}

export class CharVocab {
  /** Token id → character. */
  readonly chars: readonly string[];
  /** The unknown-character token, or null. */
  readonly unk: string | null;
  private readonly index: Map<string, number>;
  private readonly unkId: number;

  /**
   * A vocabulary with exactly these characters, in this order (token id = position). Use
   * `CharVocab.fromText` to build one from a corpus.
   */
  constructor(chars: readonly string[], opts: CharVocabOptions = {}) {
    if (!Array.isArray(chars)) throw new VocabError('CharVocab: chars must be an array of single characters');
    const index = new Map<string, number>();
    chars.forEach((ch, i) => {
      if (!isOneCodePoint(ch)) throw new VocabError(`CharVocab: entry ${i} must be a single character, got ${JSON.stringify(ch)}`);
      if (index.has(ch)) throw new VocabError(`CharVocab: character ${describeChar(ch)} appears twice (ids ${index.get(ch)} and ${i})`);
      index.set(ch, i);
    });
    const unk = opts.unk ?? null;
    if (unk !== null) {
      if (!isOneCodePoint(unk)) throw new VocabError(`CharVocab: unk must be a single character, got ${JSON.stringify(unk)}`);
      if (!index.has(unk)) throw new VocabError(`CharVocab: the unk character ${describeChar(unk)} is not in the vocabulary`);
    }
    if (chars.length === 0) throw new VocabError('CharVocab: the vocabulary is empty');
    this.chars = Object.freeze([...chars]);
    this.unk = unk;
    this.index = index;
    this.unkId = unk === null ? -1 : index.get(unk)!;
  }

  /**
   * Every distinct character of `text`, sorted by code point (so the same text always gives the
   * same ids). With `unk`, that character is added too (if the text lacks it).
   */
  static fromText(text: string, opts: CharVocabOptions = {}): CharVocab {
    if (typeof text !== 'string') throw new VocabError('CharVocab.fromText: text must be a string');
    const set = new Set<string>();
    for (const ch of text) set.add(ch);
    if (opts.unk !== undefined) {
      if (!isOneCodePoint(opts.unk)) throw new VocabError(`CharVocab: unk must be a single character, got ${JSON.stringify(opts.unk)}`);
      set.add(opts.unk);
    }
    if (set.size === 0) throw new VocabError('CharVocab.fromText: the text is empty');
    const chars = [...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    return new CharVocab(chars, opts);
  }

  static fromJSON(json: unknown): CharVocab {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw new VocabError('CharVocab.fromJSON: expected an object {chars: string[], unk: string | null}');
    }
    const o = json as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (k !== 'chars' && k !== 'unk') throw new VocabError(`CharVocab.fromJSON: unknown field '${k}' (expected chars, unk)`);
    }
    if (!Array.isArray(o.chars)) throw new VocabError('CharVocab.fromJSON: field chars must be an array of single characters');
    if (o.unk !== undefined && o.unk !== null && typeof o.unk !== 'string') throw new VocabError('CharVocab.fromJSON: field unk must be a string or null');
    return new CharVocab(o.chars as string[], o.unk == null ? {} : { unk: o.unk as string });
  }

  toJSON(): CharVocabJSON {
    return { chars: [...this.chars], unk: this.unk };
  }

  get size(): number {
    return this.chars.length;
  }

  has(ch: string): boolean {
    return this.index.has(ch);
  }

  /** The id of one character (unknown → the unk id, or a VocabError). */
  id(ch: string): number {
    const i = this.index.get(ch);
    if (i !== undefined) return i;
    if (this.unkId >= 0) return this.unkId;
    throw new VocabError(`CharVocab: unknown character ${describeChar(ch)}`);
  }

  /** Token ids for every character of `text`. */
  encode(text: string): Int32Array {
    const out: number[] = [];
    let pos = 0;
    for (const ch of text) {
      const i = this.index.get(ch);
      if (i !== undefined) out.push(i);
      else if (this.unkId >= 0) out.push(this.unkId);
      else throw new VocabError(`CharVocab.encode: unknown character ${describeChar(ch)} at position ${pos} (the vocabulary has ${this.size} characters and no unk token)`);
      pos++;
    }
    return Int32Array.from(out);
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const k = ids[i];
      if (!(Number.isInteger(k) && k >= 0 && k < this.chars.length)) {
        throw new VocabError(`CharVocab.decode: id ${k} at position ${i} is outside the vocabulary [0, ${this.chars.length})`);
      }
      s += this.chars[k];
    }
    return s;
  }
}

/** One language-modelling batch: time-major [T, B] token ids. */
export interface LMBatch {
  /** [T, B]: inputs[t·B + b] */
  inputs: Int32Array;
  /** [T, B]: the token after each input */
  targets: Int32Array;
  T: number;
  B: number;
}

function checkIds(where: string, ids: ArrayLike<number>, T: number, B: number): void {
  for (const [name, v] of [['seqLen', T], ['batchSize', B]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${where}: ${name} must be a positive integer, got ${v}`);
  }
  if (ids.length < T + 1) throw new RangeError(`${where}: the text has ${ids.length} tokens; windows of seqLen + 1 = ${T + 1} need at least that many`);
}

export interface BatcherOptions {
  /** T: steps per window. */
  seqLen: number;
  /** B: windows per batch. */
  batchSize: number;
  /** Source of the random window starts (seeded; default Rng(0)). */
  rng?: Rng;
}

/**
 * Random windows of T + 1 consecutive tokens, each window one batch column: the first T are the
 * inputs, the last T the targets. Reproducible for a given rng seed.
 */
export class CharBatcher {
  readonly T: number;
  readonly B: number;
  readonly rng: Rng;

  constructor(readonly ids: ArrayLike<number>, opts: BatcherOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('CharBatcher: options must be an object {seqLen, batchSize, rng?}');
    this.T = opts.seqLen;
    this.B = opts.batchSize;
    checkIds('CharBatcher', ids, this.T, this.B);
    this.rng = opts.rng ?? new Rng(0);
  }

  next(): LMBatch {
    const { T, B, ids } = this;
    const inputs = new Int32Array(T * B);
    const targets = new Int32Array(T * B);
    const span = ids.length - T; // starts in [0, span)
    for (let b = 0; b < B; b++) {
      const start = this.rng.int(span);
      for (let t = 0; t < T; t++) {
        inputs[t * B + b] = ids[start + t];
        targets[t * B + b] = ids[start + t + 1];
      }
    }
    return { inputs, targets, T, B };
  }
}

/**
 * The whole text as B contiguous streams, cut into consecutive [T, B] chunks (the last chunk may be
 * shorter): column b of chunk k continues column b of chunk k − 1, so a model can carry its state
 * from chunk to chunk (stateful evaluation). Tokens that do not fill the B streams evenly are left
 * out; with `maxTokens`, only the first maxTokens tokens are used.
 */
export function* streamBatches(ids: ArrayLike<number>, seqLen: number, batchSize: number, maxTokens = Infinity): Generator<LMBatch> {
  checkIds('streamBatches', ids, 1, batchSize);
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new RangeError(`streamBatches: seqLen must be a positive integer, got ${seqLen}`);
  const n = Math.min(ids.length, maxTokens + 1);
  const streamLen = Math.floor((n - 1) / batchSize); // targets available per stream
  if (streamLen < 1) throw new RangeError(`streamBatches: ${ids.length} tokens are too few for ${batchSize} streams`);
  const B = batchSize;
  for (let s = 0; s < streamLen; s += seqLen) {
    const T = Math.min(seqLen, streamLen - s);
    const inputs = new Int32Array(T * B);
    const targets = new Int32Array(T * B);
    for (let b = 0; b < B; b++) {
      const base = b * streamLen + s;
      for (let t = 0; t < T; t++) {
        inputs[t * B + b] = ids[base + t];
        targets[t * B + b] = ids[base + t + 1];
      }
    }
    yield { inputs, targets, T, B };
  }
}

/** Entropy (in nats) of the token distribution of `ids`: the loss of the best context-free model. */
export function unigramEntropy(ids: ArrayLike<number>, vocabSize: number): number {
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < ids.length; i++) counts[ids[i]]++;
  let h = 0;
  for (const c of counts) {
    if (c > 0) {
      const p = c / ids.length;
      h -= p * Math.log(p);
    }
  }
  return h;
}

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

  /**
   * Token ids for every character of `text`. The ids go straight into a typed array (a text has at
   * most `text.length` code points), never into an array of numbers or of one-character strings: a
   * corpus of n characters costs 4n bytes here, outside the JS heap.
   */
  encode(text: string): Int32Array {
    const out = new Int32Array(text.length);
    let pos = 0;
    for (const ch of text) {
      const i = this.index.get(ch);
      if (i !== undefined) out[pos] = i;
      else if (this.unkId >= 0) out[pos] = this.unkId;
      else throw new VocabError(`CharVocab.encode: unknown character ${describeChar(ch)} at position ${pos} (the vocabulary has ${this.size} characters and no unk token)`);
      pos++;
    }
    return pos === out.length ? out : out.slice(0, pos);
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

/** Token ids of a corpus, in the narrowest typed array that holds the vocabulary. */
export type TokenIds = Uint8Array | Uint16Array | Int32Array;

/** A text split by position into train/val/test token ids, with the training text's vocabulary. */
export interface CharCorpus {
  vocab: CharVocab;
  train: TokenIds;
  val: TokenIds;
  test: TokenIds;
  /** Code points in the whole text. */
  length: number;
}

export interface CharCorpusOptions {
  /** The end of the training part and of the validation part, as fractions of the text (default [0.9, 0.95]). */
  split?: [number, number];
  /** The unknown-character token (added to the vocabulary); held-out characters not in training map to it. */
  unk?: string;
  /** Names the text in errors. */
  source?: string;
}

/** Code point → id (−1: not in the vocabulary): a dense table for the Basic Multilingual Plane, a map above it. */
function idTables(vocab: CharVocab): { bmp: Int32Array; astral: Map<number, number> } {
  const bmp = new Int32Array(0x10000).fill(-1);
  const astral = new Map<number, number>();
  vocab.chars.forEach((ch, i) => {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x10000) bmp[cp] = i;
    else astral.set(cp, i);
  });
  return { bmp, astral };
}

/**
 * Split a text that arrives in pieces (a file read chunk by chunk) into train/val/test token ids by
 * code-point position, the vocabulary being the characters of the training part (sorted by code
 * point, as `CharVocab.fromText`) plus `unk`. `read(each)` must deliver the same text both times it
 * is called, in order, each piece ending on a whole code point. Memory is one byte per character for
 * a vocabulary of ≤ 256 (two up to 65,536) plus the pieces in flight: no per-character JS values,
 * and the text is never held whole. Two passes, because the vocabulary depends on where the training
 * part ends, which is known only once the characters are counted.
 */
export function charCorpusFromPieces(read: (each: (piece: string) => void) => void, opts: CharCorpusOptions = {}): CharCorpus {
  const [f1, f2] = opts.split ?? [0.9, 0.95];
  const source = opts.source ?? 'text';
  if (!(f1 > 0 && f1 < f2 && f2 < 1)) throw new RangeError(`charCorpusFromPieces: split must be two fractions 0 < a < b < 1, got [${f1}, ${f2}]`);
  // pass 1: count code points and note where each distinct one first appears
  let n = 0;
  let blank = true;
  const firstBmp = new Float64Array(0x10000).fill(-1);
  const firstAstral = new Map<number, number>();
  read((piece) => {
    if (blank && /\S/.test(piece)) blank = false;
    const len = piece.length;
    for (let i = 0; i < len; i++, n++) {
      // charCodeAt with the surrogate pair joined by hand: codePointAt in this loop is slower
      let cp = piece.charCodeAt(i);
      if (cp >= 0xd800 && cp < 0xdc00 && i + 1 < len) {
        const lo = piece.charCodeAt(i + 1);
        if (lo >= 0xdc00 && lo < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          i++;
          if (!firstAstral.has(cp)) firstAstral.set(cp, n);
          continue;
        }
      }
      if (firstBmp[cp] < 0) firstBmp[cp] = n;
    }
  });
  if (blank) throw new VocabError(`${source}: the text is empty`);
  const a = Math.floor(n * f1), b = Math.floor(n * f2);
  if (a < 2 || b - a < 2 || n - b < 2) throw new VocabError(`${source}: the text has ${n} characters, too few to split into train/val/test`);
  const chars: string[] = [];
  firstBmp.forEach((pos, cp) => {
    if (pos >= 0 && pos < a) chars.push(String.fromCharCode(cp));
  });
  for (const [cp, pos] of firstAstral) if (pos < a) chars.push(String.fromCodePoint(cp));
  if (opts.unk !== undefined && !chars.includes(opts.unk)) chars.push(opts.unk);
  chars.sort((x, y) => x.codePointAt(0)! - y.codePointAt(0)!);
  const vocab = new CharVocab(chars, opts.unk !== undefined ? { unk: opts.unk } : {});
  // pass 2: ids into one typed array
  const ids: TokenIds = vocab.size <= 0x100 ? new Uint8Array(n) : vocab.size <= 0x10000 ? new Uint16Array(n) : new Int32Array(n);
  const { bmp, astral } = idTables(vocab);
  const unkId = opts.unk !== undefined ? vocab.id(opts.unk) : -1;
  let k = 0;
  read((piece) => {
    const len = piece.length;
    for (let i = 0; i < len; i++, k++) {
      let cp = piece.charCodeAt(i);
      let id: number;
      if (cp >= 0xd800 && cp < 0xdc00 && i + 1 < len && piece.charCodeAt(i + 1) >= 0xdc00 && piece.charCodeAt(i + 1) < 0xe000) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (piece.charCodeAt(i + 1) - 0xdc00);
        i++;
        id = astral.get(cp) ?? -1;
      } else {
        id = bmp[cp];
      }
      if (k >= n) throw new VocabError(`${source}: the text changed between the two readings`);
      if (id < 0) {
        if (unkId < 0) throw new VocabError(`${source}: unknown character ${describeChar(String.fromCodePoint(cp))} at position ${k} (the training part has no such character and there is no unk token)`);
        id = unkId;
      }
      ids[k] = id;
    }
  });
  if (k !== n) throw new VocabError(`${source}: the text changed between the two readings`);
  return { vocab, train: ids.subarray(0, a), val: ids.subarray(a, b), test: ids.subarray(b), length: n };
}

/** `charCorpusFromPieces` over one string held in memory. */
export function charCorpus(text: string, opts: CharCorpusOptions = {}): CharCorpus {
  if (typeof text !== 'string') throw new VocabError('charCorpus: text must be a string');
  return charCorpusFromPieces((each) => each(text), opts);
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
  for (let s = 0; s < streamLen; s += seqLen) yield streamChunk(ids, streamLen, batchSize, s, Math.min(seqLen, streamLen - s));
}

/** Chunk [s, s + T) of the B streams of length streamLen that `streamBatches` cuts `ids` into. */
export function streamChunk(ids: ArrayLike<number>, streamLen: number, B: number, s: number, T: number): LMBatch {
  const inputs = new Int32Array(T * B);
  const targets = new Int32Array(T * B);
  for (let b = 0; b < B; b++) {
    const base = b * streamLen + s;
    for (let t = 0; t < T; t++) {
      inputs[t * B + b] = ids[base + t];
      targets[t * B + b] = ids[base + t + 1];
    }
  }
  return { inputs, targets, T, B };
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

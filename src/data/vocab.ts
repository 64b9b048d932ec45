/**
 * Vocab: string tokens ↔ integer ids, with optional special tokens
 *
 *   pad '<pad>'  fills the tail of short sequences in a padded batch (id 0 when present)
 *   unk '<unk>'  stands for every token the vocabulary does not know
 *   bos '<s>'    starts a sequence (decoders, generators)
 *   eos '</s>'   ends one
 *
 * Special tokens come first, in that order, then the corpus tokens by descending count (ties in
 * code-point order), so the same corpus always gives the same ids.
 *
 * Unknown tokens at inference: a vocabulary WITH an unk token maps every unknown token to the unk
 * id (and `decode` gives '<unk>' back); a vocabulary WITHOUT one throws a `VocabError` that names
 * the token and its position — never a silent wrong id.
 *
 * The JSON form ({tokens, specials}) is what model files store in `recur.vocab`.
 */
import { VocabError } from './text.ts';

export { VocabError };

export type SpecialName = 'pad' | 'unk' | 'bos' | 'eos';
export const SPECIAL_NAMES: readonly SpecialName[] = ['pad', 'unk', 'bos', 'eos'];
export const DEFAULT_SPECIALS: Readonly<Record<SpecialName, string>> = Object.freeze({ pad: '<pad>', unk: '<unk>', bos: '<s>', eos: '</s>' });

/** Which special tokens a vocabulary has: the token string, or null for none. */
export type Specials = Record<SpecialName, string | null>;

export interface VocabJSON {
  /** Token id → token. */
  tokens: string[];
  specials: Specials;
}

export interface VocabBuildOptions {
  /** Keep only tokens seen at least this often (default 1). */
  minCount?: number;
  /** At most this many tokens in all, specials included (default: no limit). */
  maxSize?: number;
  /**
   * Special tokens: true (default) for all four with their default strings, or per name a string,
   * true (default string) or false/null (none). Names left out default to present.
   */
  specials?: boolean | Partial<Record<SpecialName, string | boolean | null>>;
}

function show(t: string): string {
  return JSON.stringify(t);
}

function resolveSpecials(s: VocabBuildOptions['specials']): Specials {
  const out: Specials = { pad: null, unk: null, bos: null, eos: null };
  if (s === false) return out;
  if (s === undefined || s === true) return { ...DEFAULT_SPECIALS };
  if (s === null || typeof s !== 'object') throw new VocabError(`Vocab: specials must be true, false or an object {pad, unk, bos, eos}, got ${String(s)}`);
  for (const k of Object.keys(s)) {
    if (!(SPECIAL_NAMES as readonly string[]).includes(k)) throw new VocabError(`Vocab: unknown special token '${k}' (known: ${SPECIAL_NAMES.join(', ')})`);
  }
  for (const name of SPECIAL_NAMES) {
    const v = s[name];
    if (v === undefined || v === true) out[name] = DEFAULT_SPECIALS[name];
    else if (v === false || v === null) out[name] = null;
    else if (typeof v === 'string' && v.length > 0) out[name] = v;
    else throw new VocabError(`Vocab: special '${name}' must be a non-empty string, true or false, got ${JSON.stringify(v)}`);
  }
  return out;
}

export class Vocab {
  readonly tokens: readonly string[];
  readonly specials: Readonly<Specials>;
  private readonly index: Map<string, number>;
  /** Ids of the special tokens, or -1. */
  private readonly sid: Record<SpecialName, number>;

  /** A vocabulary with exactly these tokens (id = position); every special must be one of them. */
  constructor(tokens: readonly string[], specials: Partial<Specials> = {}) {
    if (!Array.isArray(tokens)) throw new VocabError('Vocab: tokens must be an array of strings');
    const index = new Map<string, number>();
    tokens.forEach((t, i) => {
      if (typeof t !== 'string' || t.length === 0) throw new VocabError(`Vocab: token ${i} must be a non-empty string, got ${JSON.stringify(t)}`);
      if (index.has(t)) throw new VocabError(`Vocab: token ${show(t)} appears twice (ids ${index.get(t)} and ${i})`);
      index.set(t, i);
    });
    if (tokens.length === 0) throw new VocabError('Vocab: the vocabulary is empty');
    const sp: Specials = { pad: null, unk: null, bos: null, eos: null };
    const sid = { pad: -1, unk: -1, bos: -1, eos: -1 };
    for (const k of Object.keys(specials)) {
      if (!(SPECIAL_NAMES as readonly string[]).includes(k)) throw new VocabError(`Vocab: unknown special token '${k}' (known: ${SPECIAL_NAMES.join(', ')})`);
    }
    for (const name of SPECIAL_NAMES) {
      const t = specials[name] ?? null;
      if (t === null) continue;
      const i = index.get(t);
      if (i === undefined) throw new VocabError(`Vocab: the ${name} token ${show(t)} is not in the vocabulary`);
      sp[name] = t;
      sid[name] = i;
    }
    this.tokens = Object.freeze([...tokens]);
    this.specials = Object.freeze(sp);
    this.index = index;
    this.sid = sid;
  }

  /**
   * Count the tokens of a corpus (sequences of tokens) and build a vocabulary: specials first, then
   * by descending count, ties in code-point order.
   */
  static build(sequences: Iterable<readonly string[]>, opts: VocabBuildOptions = {}): Vocab {
    for (const k of Object.keys(opts)) {
      if (!['minCount', 'maxSize', 'specials'].includes(k)) throw new VocabError(`Vocab.build: unknown option '${k}' (known: minCount, maxSize, specials)`);
    }
    const minCount = opts.minCount ?? 1;
    if (!Number.isInteger(minCount) || minCount < 1) throw new VocabError(`Vocab.build: minCount must be a positive integer, got ${String(opts.minCount)}`);
    const maxSize = opts.maxSize ?? Infinity;
    if (maxSize !== Infinity && (!Number.isInteger(maxSize) || maxSize < 1)) throw new VocabError(`Vocab.build: maxSize must be a positive integer, got ${String(opts.maxSize)}`);
    const specials = resolveSpecials(opts.specials);
    const specialList = SPECIAL_NAMES.map((n) => specials[n]).filter((t): t is string => t !== null);
    if (new Set(specialList).size !== specialList.length) throw new VocabError(`Vocab.build: special tokens must differ, got ${specialList.map(show).join(', ')}`);
    const counts = new Map<string, number>();
    for (const seq of sequences) {
      for (const t of seq) counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    const isSpecial = new Set(specialList);
    const corpus = [...counts.entries()]
      .filter(([t, c]) => c >= minCount && !isSpecial.has(t) && t.length > 0)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([t]) => t);
    if (corpus.length === 0) throw new VocabError(`Vocab.build: no token occurs at least minCount = ${minCount} times (is the corpus empty?)`);
    if (maxSize < specialList.length + 1) throw new VocabError(`Vocab.build: maxSize ${maxSize} leaves no room beside the ${specialList.length} special tokens`);
    const tokens = [...specialList, ...corpus].slice(0, maxSize);
    return new Vocab(tokens, specials);
  }

  static fromJSON(json: unknown): Vocab {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new VocabError('Vocab.fromJSON: expected an object {tokens: string[], specials: {pad, unk, bos, eos}}');
    const o = json as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== 'tokens' && k !== 'specials') throw new VocabError(`Vocab.fromJSON: unknown field '${k}' (expected tokens, specials)`);
    if (!Array.isArray(o.tokens)) throw new VocabError('Vocab.fromJSON: field tokens must be an array of strings');
    const sp = o.specials ?? {};
    if (sp === null || typeof sp !== 'object' || Array.isArray(sp)) throw new VocabError('Vocab.fromJSON: field specials must be an object {pad, unk, bos, eos}');
    return new Vocab(o.tokens as string[], sp as Partial<Specials>);
  }

  toJSON(): VocabJSON {
    return { tokens: [...this.tokens], specials: { ...this.specials } };
  }

  get size(): number {
    return this.tokens.length;
  }

  has(token: string): boolean {
    return this.index.has(token);
  }

  /** The id of a special token, or null when the vocabulary has none. */
  specialId(name: SpecialName): number | null {
    const i = this.sid[name];
    return i < 0 ? null : i;
  }

  /** The id of a special token; a VocabError when the vocabulary lacks it (`why` says who needs it). */
  requireSpecial(name: SpecialName, why = ''): number {
    const i = this.sid[name];
    if (i < 0) throw new VocabError(`Vocab: the vocabulary has no ${name} token${why ? ` (${why} needs one)` : ''}`);
    return i;
  }

  get padId(): number | null { return this.specialId('pad'); }
  get unkId(): number | null { return this.specialId('unk'); }
  get bosId(): number | null { return this.specialId('bos'); }
  get eosId(): number | null { return this.specialId('eos'); }

  /** The id of one token: unknown → the unk id, or a VocabError naming the token. */
  id(token: string): number {
    const i = this.index.get(token);
    if (i !== undefined) return i;
    if (this.sid.unk >= 0) return this.sid.unk;
    throw new VocabError(`Vocab: unknown token ${show(token)} (the vocabulary has ${this.size} tokens and no unk token)`);
  }

  /**
   * Ids for a token sequence, optionally framed by bos/eos (which must then exist). Unknown tokens
   * become the unk id, or raise a VocabError naming the token and its position.
   */
  encode(tokens: readonly string[], opts: { bos?: boolean; eos?: boolean } = {}): Int32Array {
    const pre = opts.bos ? 1 : 0;
    const out = new Int32Array(tokens.length + pre + (opts.eos ? 1 : 0));
    if (opts.bos) out[0] = this.requireSpecial('bos', 'encode with bos');
    if (opts.eos) out[out.length - 1] = this.requireSpecial('eos', 'encode with eos');
    const unk = this.sid.unk;
    for (let p = 0; p < tokens.length; p++) {
      const i = this.index.get(tokens[p]);
      if (i !== undefined) out[pre + p] = i;
      else if (unk >= 0) out[pre + p] = unk;
      else throw new VocabError(`Vocab.encode: unknown token ${show(tokens[p])} at position ${p} (the vocabulary has ${this.size} tokens and no unk token)`);
    }
    return out;
  }

  /** How many tokens of a sequence the vocabulary does not know. */
  countUnknown(tokens: readonly string[]): number {
    let n = 0;
    for (const t of tokens) if (!this.index.has(t)) n++;
    return n;
  }

  /** Tokens for ids; with skipSpecials, pad/bos/eos are dropped (unk is kept, it stands for text). */
  decode(ids: ArrayLike<number>, opts: { skipSpecials?: boolean } = {}): string[] {
    const out: string[] = [];
    const skip = opts.skipSpecials ?? false;
    for (let i = 0; i < ids.length; i++) {
      const k = ids[i];
      if (!(Number.isInteger(k) && k >= 0 && k < this.tokens.length)) throw new VocabError(`Vocab.decode: id ${k} at position ${i} is outside the vocabulary [0, ${this.tokens.length})`);
      if (skip && (k === this.sid.pad || k === this.sid.bos || k === this.sid.eos)) continue;
      out.push(this.tokens[k]);
    }
    return out;
  }
}

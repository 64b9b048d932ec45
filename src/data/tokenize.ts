/**
 * Tokenizers: text → string tokens, and back. Two kinds, both serialisable to JSON so a model file
 * records exactly how its inputs were cut:
 *
 * - `CharTokenizer`: one token per Unicode code point (not UTF-16 unit), so 'é' or an emoji is one
 *   token, as in data/text.ts's CharVocab.
 * - `WordTokenizer`: runs of letters/digits (with inner apostrophes: "don't") are words, and every
 *   other non-space character is a token of its own ("<", "$", "!"), so punctuation and markup
 *   still carry signal. Lower-cased by default. A word longer than `maxTokenChars` is cut to that
 *   many characters (a token, not a sequence: base64 blobs and URLs would otherwise flood the
 *   vocabulary with one-off tokens) — documented here because it is a deliberate lossy step.
 *
 * Tokens are plain strings; ids come from a `Vocab` (data/vocab.ts).
 */

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

export type TokenizerJSON =
  | { type: 'char'; lowercase: boolean }
  | { type: 'word'; lowercase: boolean; maxTokenChars: number };

export interface Tokenizer {
  readonly type: 'char' | 'word';
  /** Text → tokens. */
  tokenize(text: string): string[];
  /** Tokens → text (words are joined by spaces; lossy for the word tokenizer). */
  detokenize(tokens: readonly string[]): string;
  toJSON(): TokenizerJSON;
}

function checkText(where: string, text: unknown): string {
  if (typeof text !== 'string') throw new TokenizerError(`${where}: expected a string, got ${text === null ? 'null' : typeof text}`);
  return text;
}

export interface CharTokenizerOptions {
  /** Lower-case the text first (default false). */
  lowercase?: boolean;
}

export class CharTokenizer implements Tokenizer {
  readonly type = 'char' as const;
  readonly lowercase: boolean;

  constructor(opts: CharTokenizerOptions = {}) {
    checkKeys('CharTokenizer', opts, ['lowercase']);
    this.lowercase = checkBool('CharTokenizer', 'lowercase', opts.lowercase, false);
  }

  tokenize(text: string): string[] {
    const s = checkText('CharTokenizer.tokenize', text);
    return [...(this.lowercase ? s.toLowerCase() : s)];
  }

  detokenize(tokens: readonly string[]): string {
    return tokens.join('');
  }

  toJSON(): TokenizerJSON {
    return { type: 'char', lowercase: this.lowercase };
  }
}

export interface WordTokenizerOptions {
  /** Lower-case the text first (default true). */
  lowercase?: boolean;
  /** Longer words are cut to this many characters (default 20). */
  maxTokenChars?: number;
}

// A word: letters/digits/marks, optionally joined by single apostrophes; or any one other non-space char.
const WORD_RE = /[\p{L}\p{N}\p{M}]+(?:['’][\p{L}\p{N}\p{M}]+)*|[^\s\p{L}\p{N}\p{M}]/gu;

export class WordTokenizer implements Tokenizer {
  readonly type = 'word' as const;
  readonly lowercase: boolean;
  readonly maxTokenChars: number;

  constructor(opts: WordTokenizerOptions = {}) {
    checkKeys('WordTokenizer', opts, ['lowercase', 'maxTokenChars']);
    this.lowercase = checkBool('WordTokenizer', 'lowercase', opts.lowercase, true);
    this.maxTokenChars = opts.maxTokenChars ?? 20;
    if (typeof this.maxTokenChars !== 'number' || !Number.isSafeInteger(this.maxTokenChars) || this.maxTokenChars < 1) {
      throw new TokenizerError(`WordTokenizer: maxTokenChars must be a positive integer, got ${String(opts.maxTokenChars)}`);
    }
  }

  tokenize(text: string): string[] {
    const s = checkText('WordTokenizer.tokenize', text);
    const out = (this.lowercase ? s.toLowerCase() : s).match(WORD_RE) ?? [];
    const max = this.maxTokenChars;
    for (let i = 0; i < out.length; i++) if (out[i].length > max) out[i] = out[i].slice(0, max);
    return out;
  }

  detokenize(tokens: readonly string[]): string {
    return tokens.join(' ');
  }

  toJSON(): TokenizerJSON {
    return { type: 'word', lowercase: this.lowercase, maxTokenChars: this.maxTokenChars };
  }
}

/**
 * A boolean option: absent → the default; anything but true or false is an error (a tokenizer read
 * from a model file could say `lowercase: []`, which is truthy but not a choice anyone made).
 */
function checkBool(where: string, key: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new TokenizerError(`${where}: ${key} must be true or false, got ${JSON.stringify(v)?.slice(0, 80) ?? String(v)}`);
  return v;
}

function checkKeys(where: string, o: unknown, known: readonly string[]): void {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new TokenizerError(`${where}: options must be an object`);
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new TokenizerError(`${where}: unknown option '${k}' (known: ${known.join(', ')})`);
}

/** Rebuild a tokenizer from its JSON form (what `toJSON` wrote). */
export function tokenizerFromJSON(json: unknown): Tokenizer {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new TokenizerError('tokenizerFromJSON: expected an object {type: "char" | "word", ...}');
  const { type, ...rest } = json as Record<string, unknown>;
  if (type === 'char') return new CharTokenizer(rest as CharTokenizerOptions);
  if (type === 'word') return new WordTokenizer(rest as WordTokenizerOptions);
  throw new TokenizerError(`tokenizerFromJSON: unknown tokenizer type ${JSON.stringify(type)} (expected "char" or "word")`);
}

/** A tokenizer by kind name, for task options ('char' | 'word'). */
export function makeTokenizer(kind: string, opts: { lowercase?: boolean } = {}): Tokenizer {
  if (kind === 'char') return new CharTokenizer(opts);
  if (kind === 'word') return new WordTokenizer(opts);
  throw new TokenizerError(`unknown tokenizer '${kind}' (expected 'char' or 'word')`);
}

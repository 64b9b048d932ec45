/**
 * Data files by path (Node.js): the `load*` forms of the parsers in loaders.ts, exported by
 * `recurjs/node` (and used by the task registry for a task's `data` option). A file is read whole after the checks of `readInputFile` (a regular file within
 * the size limit) and decoded as strict UTF-8 — a byte sequence that is not UTF-8 is an error naming
 * the file and the byte offset, not a silent U+FFFD — or as Latin-1 when asked (`encoding: 'latin1'`).
 * A byte-order mark is dropped and CRLF line ends become LF.
 */
import { readInputFile } from '../io/read.ts';
import type { Limits } from '../io/limits.ts';
import { checkNotEmpty, DataError, parseJSONL, parseLines, parseNumericCSV, type NumericTable, type TextPair } from './loaders.ts';

export type TextEncoding = 'utf-8' | 'latin1';

export interface ReadTextOptions {
  encoding?: TextEncoding;
  limits?: Partial<Limits>;
}

/** Decode bytes as strict UTF-8 (or Latin-1); `source` names the input in errors. */
export function decodeText(bytes: Uint8Array, source: string, encoding: TextEncoding = 'utf-8'): string {
  if (encoding !== 'utf-8' && encoding !== 'latin1') throw new DataError(`${source}: unknown encoding '${String(encoding)}' (known: utf-8, latin1)`);
  let text: string;
  try {
    text = new TextDecoder(encoding, { fatal: true }).decode(bytes);
  } catch {
    let ok = 0;
    // find the offset of the first bad sequence by decoding growing prefixes is quadratic; instead
    // decode in streaming mode chunk by chunk and report the chunk where it fails
    const d = new TextDecoder('utf-8', { fatal: true });
    const CHUNK = 1 << 16;
    try {
      for (; ok < bytes.length; ok += CHUNK) d.decode(bytes.subarray(ok, ok + CHUNK), { stream: true });
      d.decode();
    } catch {
      // ok is the start of the chunk holding the first invalid byte
    }
    throw new DataError(`${source}: not valid UTF-8 (first bad byte within bytes ${ok}–${Math.min(ok + CHUNK, bytes.length) - 1}); if the file is Latin-1, say so with the latin1 encoding`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text;
}

function readText(path: string, what: string, opts: ReadTextOptions = {}): string {
  if (typeof path !== 'string' || path.length === 0) throw new DataError(`${what}: the path must be a non-empty string`);
  let bytes: Uint8Array;
  try {
    bytes = readInputFile(path, 'data file', opts.limits);
  } catch (e) {
    throw new DataError(`${what}: ${(e as Error).message}`);
  }
  return decodeText(bytes, path, opts.encoding);
}

/** A whole text file; an empty (or whitespace-only) file is a DataError. */
export function loadText(path: string, opts: ReadTextOptions = {}): string {
  const text = readText(path, 'loadText', opts);
  checkNotEmpty(text, path);
  return text.replace(/\r\n/g, '\n');
}

/** The non-blank lines of a text file, trimmed at the end. */
export function loadLines(path: string, opts: ReadTextOptions = {}): string[] {
  return parseLines(readText(path, 'loadLines', opts), path);
}

export function loadNumericCSV(path: string, opts: { columns?: readonly string[]; delimiter?: string } & ReadTextOptions = {}): NumericTable {
  const { encoding, limits, ...rest } = opts;
  return parseNumericCSV(readText(path, 'loadNumericCSV', { encoding, limits }), { ...rest, source: path });
}

export function loadJSONL(path: string, opts: { inputKey?: string; targetKey?: string } & ReadTextOptions = {}): TextPair[] {
  const { encoding, limits, ...rest } = opts;
  return parseJSONL(readText(path, 'loadJSONL', { encoding, limits }), { ...rest, source: path });
}

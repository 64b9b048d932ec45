/**
 * Data files by path (Node.js): the `load*` forms of the parsers in loaders.ts, exported by
 * `recurjs/node` (and used by the task registry for a task's `data` option). A file is read whole after the checks of `readInputFile` (a regular file within
 * the size limit) and decoded as strict UTF-8 — a byte sequence that is not UTF-8 is an error naming
 * the file and the byte offset, not a silent U+FFFD — or as Latin-1 when asked (`encoding: 'latin1'`).
 * A byte-order mark is dropped and CRLF line ends become LF.
 */
import { readInputFile, readInputFileChunks } from '../io/read.ts';
import { charCorpusFromPieces, VocabError, type CharCorpus, type CharCorpusOptions } from './text.ts';
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

/**
 * A text file as a character corpus (data/text.ts `charCorpusFromPieces`): split by code-point
 * position into train/val/test token ids with the training part's vocabulary. The file is read in
 * chunks and decoded as it streams (strict UTF-8, or Latin-1), twice — once to count, once to fill —
 * so neither the bytes nor the decoded string are ever held whole: memory is the id array (one or
 * two bytes a character) plus a chunk. As with `loadText`, a byte-order mark is dropped, CRLF becomes
 * LF, and a blank file is an error. `chunkBytes` sets the read size (default 4 MiB).
 */
export function loadCharCorpus(path: string, opts: Omit<CharCorpusOptions, 'source'> & ReadTextOptions & { chunkBytes?: number } = {}): CharCorpus {
  if (typeof path !== 'string' || path.length === 0) throw new DataError('loadCharCorpus: the path must be a non-empty string');
  const { encoding = 'utf-8', limits, chunkBytes, ...corpusOpts } = opts;
  if (encoding !== 'utf-8' && encoding !== 'latin1') throw new DataError(`${path}: unknown encoding '${String(encoding)}' (known: utf-8, latin1)`);
  const read = (each: (piece: string) => void): void => {
    // TextDecoder drops a leading byte-order mark itself and never splits a code point between
    // pieces in streaming mode; a '\r' at the end of a piece waits for the next one, whose '\n'
    // may pair with it.
    const decoder = new TextDecoder(encoding, { fatal: true });
    let offset = 0;
    let held = '';
    const emit = (text: string, last: boolean): void => {
      let t = held + text;
      held = '';
      if (!last && t.endsWith('\r')) {
        held = '\r';
        t = t.slice(0, -1);
      }
      if (t.length) each(t.replace(/\r\n/g, '\n'));
    };
    const decode = (chunk?: Uint8Array): string => {
      try {
        return chunk ? decoder.decode(chunk, { stream: true }) : decoder.decode();
      } catch {
        const end = offset + (chunk?.length ?? 0);
        throw new DataError(`${path}: not valid UTF-8 (first bad byte within bytes ${Math.max(0, offset - 4)}–${Math.max(0, end - 1)}); if the file is Latin-1, say so with the latin1 encoding`);
      }
    };
    try {
      readInputFileChunks(path, 'data file', limits ?? {}, (chunk) => {
        emit(decode(chunk), false);
        offset += chunk.length;
      }, { chunkBytes });
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw new DataError(`loadCharCorpus: ${(e as Error).message}`);
    }
    emit(decode(), true);
  };
  try {
    return charCorpusFromPieces(read, { ...corpusOpts, source: path });
  } catch (e) {
    if (e instanceof VocabError) throw new DataError(e.message.replace(/the text is empty$/, 'the file is empty'));
    throw e;
  }
}

/**
 * Reading an input file by path, with the checks every loader needs before it trusts a byte: the
 * path names a regular file (not a folder, a device or a pipe, which could never end) of at most
 * `limits.fileBytes` bytes.
 *
 * node:fs is taken from `process.getBuiltinModule` when a file is read, not imported, so that the
 * loaders built on this (data files, data sets) keep a module graph that bundles for browsers; there
 * they fail at the call with a clear message instead of at bundling.
 */
import { checkLimit, resolveLimits, type Limits } from './limits.ts';
import { nodeBuiltin } from '../util/node.ts';

type NodeFs = typeof import('node:fs');

/** node:fs in Node.js; a clear error elsewhere. */
export function nodeFs(what: string): NodeFs {
  const fs = nodeBuiltin<NodeFs>('node:fs');
  if (!fs) throw new InputFileError(`${what}: reading files by path needs Node.js (≥ 20.16); in a browser, pass the file's contents instead`);
  return fs;
}

/** An input file that is missing, not a regular file, or unreadable. */
export class InputFileError extends Error {
  /** The file system's error code (ENOENT, EACCES, …) when the file could not be reached. */
  readonly code?: string;
  constructor(message: string, code?: string) {
    super(message);
    this.name = 'InputFileError';
    if (code !== undefined) this.code = code;
  }
}

/**
 * The bytes of the regular file at `path`, after checking its kind and size. `what` names the file
 * in errors ("model file", "weight shard 'group1.bin'").
 */
export function readInputFile(path: string, what: string, limits: Partial<Limits> = {}): Uint8Array {
  const fs = nodeFs(what);
  checkInputFile(fs, path, what, limits);
  return fs.readFileSync(path);
}

/** The kind and size checks of `readInputFile`; returns the size in bytes. */
function checkInputFile(fs: NodeFs, path: string, what: string, limits: Partial<Limits>): number {
  let st;
  try {
    st = fs.statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputFileError(code === 'ENOENT' ? `${what} '${path}' does not exist` : `${what} '${path}' cannot be read (${code ?? (e as Error).message})`, code);
  }
  if (!st.isFile()) throw new InputFileError(`${what} '${path}' is ${st.isDirectory() ? 'a folder' : 'not a regular file'}`);
  checkLimit(resolveLimits(limits), 'fileBytes', st.size, `${what} '${path}': size in bytes`);
  return st.size;
}

/**
 * An input file read in chunks of at most `chunkBytes`, after the checks of `readInputFile`, so
 * that a large file is never held whole: `each` sees the chunks in order (a view that is reused:
 * copy what must outlive the call). A file whose size changes while it is read is an error.
 */
export function readInputFileChunks(path: string, what: string, limits: Partial<Limits>, each: (chunk: Uint8Array) => void, opts: { chunkBytes?: number } = {}): void {
  const fs = nodeFs(what);
  const size = checkInputFile(fs, path, what, limits);
  const buf = new Uint8Array(Math.max(1, Math.min(opts.chunkBytes ?? 1 << 22, size)));
  const fd = fs.openSync(path, 'r');
  try {
    let pos = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      pos += n;
      if (pos > size) break;
      each(buf.subarray(0, n));
    }
    if (pos !== size) throw new InputFileError(`${what} '${path}' changed size while being read (${size} bytes, then ${pos})`);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reading a Keras / TF.js layers model from disk: `loadKerasModel(path)` reads model.json and the
 * weight shards beside it (paths in the manifest are relative to model.json's folder).
 *
 * A model.json is untrusted input, and its weightsManifest names files. What this promises:
 * - every shard path is resolved (symbolic links included) and must stay inside the folder of
 *   model.json: absolute paths, `..` escapes and links that lead out are refused, so a model.json
 *   cannot make recur read (and `recur import --check` print) another file on the machine;
 * - a shard must be a regular file (not a folder, device or pipe: /dev/zero never ends, a pipe
 *   blocks), and its size is checked against what the manifest's weights need and against
 *   `limits.fileBytes` BEFORE it is read;
 * - model.json itself must be a regular file within `limits.headerBytes`, and valid UTF-8;
 * - messages name the manifest entry, never the size or contents of the file it points to.
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep, win32 } from 'node:path';
import { parseKerasModel, KerasImportError, type KerasLoadOptions, type KerasModel, type KerasShardSource } from './keras.ts';
import { checkLimit, resolveLimits } from '../io/limits.ts';

export * from './keras.ts';

// Opening a pipe for reading blocks until a writer appears; O_NONBLOCK makes the open return so
// the fstat check below can refuse it. It changes nothing for regular files. (Absent on Windows.)
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/** Whether `target` (absolute, resolved) lies strictly inside the folder `root`. */
function inside(root: string, target: string): boolean {
  const rel = relative(root, target);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * Read exactly `bytes` bytes of the regular file `path`, whose stat (from the checks) is `expect`:
 * the file opened must be that same file (device and inode), still regular and still that size,
 * so a file swapped between the check and the read is refused rather than read.
 */
function readExactly(path: string, bytes: number, expect: Stats, what: string): Uint8Array {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.dev !== expect.dev || st.ino !== expect.ino || st.size !== bytes) {
      throw new KerasImportError(`${what} changed while it was being read`);
    }
    const out = new Uint8Array(bytes);
    let off = 0;
    while (off < bytes) {
      const n = readSync(fd, out, off, bytes - off, off);
      if (n === 0) throw new KerasImportError(`${what} changed while it was being read`);
      off += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Load a TF.js layers-model `model.json` and the shards beside it (see the file comment). */
export function loadKerasModel(modelJsonPath: string, opts: KerasLoadOptions = {}): KerasModel {
  const lim = resolveLimits(opts.limits);
  let jsonStat: Stats;
  try {
    jsonStat = statSync(modelJsonPath);
  } catch {
    throw new KerasImportError(`model file '${modelJsonPath}' does not exist`);
  }
  if (!jsonStat.isFile()) throw new KerasImportError(`model file '${modelJsonPath}' is not a regular file`);
  checkLimit(lim, 'headerBytes', jsonStat.size, `${modelJsonPath}: bytes of the model.json`);
  const jsonBytes = readExactly(modelJsonPath, jsonStat.size, jsonStat, `model file '${modelJsonPath}'`);

  // The folder shards must stay in, with its own links resolved, so that a shard's resolved path
  // can be compared with it.
  const root = realpathSync(dirname(modelJsonPath));
  const checked = new Map<string, { real: string; stat: Stats }>();
  const shard = (p: string): { real: string; stat: Stats } => {
    const known = checked.get(p);
    if (known) return known;
    const what = `${modelJsonPath}: weight shard '${p}'`;
    if (p.includes('\0')) throw new KerasImportError(`${what} has a NUL character in its path`);
    if (isAbsolute(p) || win32.isAbsolute(p)) throw new KerasImportError(`${what} is an absolute path; shard paths must be relative to the folder of the model.json`);
    const full = resolve(root, p);
    if (!inside(root, full)) throw new KerasImportError(`${what} points outside the folder of the model.json ('..' escapes are not allowed)`);
    let real: string;
    try {
      real = realpathSync(full);
    } catch {
      throw new KerasImportError(`${what} is missing (looked for ${full})`);
    }
    if (!inside(root, real)) throw new KerasImportError(`${what} is a link that leads outside the folder of the model.json`);
    const stat = statSync(real);
    if (!stat.isFile()) throw new KerasImportError(`${what} is not a regular file (${stat.isDirectory() ? 'a folder' : 'a device, pipe or socket'})`);
    const r = { real, stat };
    checked.set(p, r);
    return r;
  };
  const source: KerasShardSource = {
    size: (p) => shard(p).stat.size,
    read: (p, bytes) => {
      const s = shard(p);
      return readExactly(s.real, bytes, s.stat, `${modelJsonPath}: weight shard '${p}'`);
    },
  };
  return parseKerasModel(jsonBytes, source, opts, modelJsonPath);
}

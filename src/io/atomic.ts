/**
 * Atomic file replacement.
 *
 * `writeFileAtomic(path, data)` promises that after it returns, `path` holds
 * exactly `data`, durably (the bytes were fsynced before the rename), and that
 * at no moment does `path` hold a partial write: readers see either the old
 * file (or no file) or the complete new one. It does this by writing to a
 * uniquely named temporary file in the same directory (so the final rename
 * never crosses a file system), fsyncing it, and renaming it over the target.
 * On any failure the temporary file is removed and the error is rethrown; the
 * target is left untouched.
 *
 * After the rename the containing directory is fsynced too, on a best-effort
 * basis (not every platform allows opening a directory for that), so the
 * rename itself survives a crash where the platform supports it.
 *
 * A failed write throws an error that names the target, not the temporary file
 * (`cannot write 'out.svg': ENOENT: no such file or directory`), keeping the
 * system error's `code`.
 *
 * A process killed mid-write leaves its temporary file behind. Each write
 * therefore first removes the temporary files of the same target whose
 * process (the pid in the name) no longer runs.
 *
 * `writeFileAtomicAsync` is the same operation using promise-based I/O.
 */
import {
  closeSync,
  readdirSync,
  fsyncSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** The temporary files of `target`: `.<name>.<pid>.<12 hex>.tmp` (see tempPathFor). */
function tempFilePattern(base: string): RegExp {
  const escaped = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^\\.${escaped}\\.(\\d+)\\.[0-9a-f]{12}\\.tmp$`);
}

/** Whether a process with this pid runs (one we may not signal still runs). */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Remove the temporary files a killed write of `target` left behind: those whose writer process
 * no longer runs. Best effort: a directory that cannot be listed, or a file another process
 * removed first, is no error.
 */
function removeStaleTempFiles(target: string): void {
  const dir = dirname(target);
  const pattern = tempFilePattern(basename(target));
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processRuns(pid)) continue;
    try {
      unlinkSync(join(dir, name));
    } catch {
      // gone already, or not ours to remove
    }
  }
}

/** The error of a failed write, naming `target` instead of the temporary file. */
function targetError(target: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  if (!(e instanceof Error)) return new Error(`cannot write '${target}': ${String(err)}`);
  // A system error reads "CODE: description, syscall 'path'": keep "CODE: description".
  const reason = e.syscall && e.message.includes(`, ${e.syscall}`) ? e.message.slice(0, e.message.indexOf(`, ${e.syscall}`)) : e.message;
  const out = new Error(`cannot write '${target}': ${reason}`, { cause: err }) as NodeJS.ErrnoException;
  if (e.code !== undefined) out.code = e.code;
  if (e.errno !== undefined) out.errno = e.errno;
  if (e.syscall !== undefined) out.syscall = e.syscall;
  out.path = target;
  return out;
}

/** A fresh, unique temporary path next to `target`. */
function tempPathFor(target: string): string {
  const dir = dirname(target);
  const base = basename(target);
  const tag = `${process.pid}.${randomBytes(6).toString('hex')}`;
  return join(dir, `.${base}.${tag}.tmp`);
}

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? new TextEncoder().encode(data) : data;
}

/** fsync a directory so a rename inside it is durable; ignored where unsupported. */
function syncDirBestEffort(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms / file systems refuse to open or fsync directories.
  } finally {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // ignore
      }
    }
  }
}

/**
 * Write `data` to `path` atomically (see the module comment). Strings are
 * written as UTF-8. Throws whatever the file system threw; never leaves a
 * temporary file or a half-written target behind.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const bytes = toBytes(data);
  removeStaleTempFiles(path);
  const tmp = tempPathFor(path);
  let fd: number | undefined;
  try {
    // 'wx': fail rather than clobber if the temporary name somehow exists.
    fd = openSync(tmp, 'wx', 0o666);
    let written = 0;
    while (written < bytes.byteLength) {
      written += writeSync(fd, bytes, written, bytes.byteLength - written);
    }
    fsyncSync(fd);
    const toClose = fd;
    fd = undefined;
    closeSync(toClose);
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // ignore: the original error matters more
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      // ignore: it may never have been created
    }
    throw targetError(path, err);
  }
  syncDirBestEffort(dirname(path));
}

/** Promise-based variant of {@link writeFileAtomic} with the same guarantees. */
export async function writeFileAtomicAsync(
  path: string,
  data: Uint8Array | string,
): Promise<void> {
  const bytes = toBytes(data);
  removeStaleTempFiles(path);
  const tmp = tempPathFor(path);
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(tmp, 'wx', 0o666);
    await handle.writeFile(bytes);
    await handle.sync();
    const toClose = handle;
    handle = undefined;
    await toClose.close();
    await rename(tmp, path);
  } catch (err) {
    if (handle !== undefined) {
      try {
        await handle.close();
      } catch {
        // ignore
      }
    }
    try {
      await unlink(tmp);
    } catch {
      // ignore
    }
    throw targetError(path, err);
  }
  syncDirBestEffort(dirname(path));
}

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
 * `writeFileAtomicAsync` is the same operation using promise-based I/O.
 */
import {
  closeSync,
  fsyncSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

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
    throw err;
  }
  syncDirBestEffort(dirname(path));
}

/** Promise-based variant of {@link writeFileAtomic} with the same guarantees. */
export async function writeFileAtomicAsync(
  path: string,
  data: Uint8Array | string,
): Promise<void> {
  const bytes = toBytes(data);
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
    throw err;
  }
  syncDirBestEffort(dirname(path));
}

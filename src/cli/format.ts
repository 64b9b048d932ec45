/** Small formatting helpers for the CLI's human-readable output. */
import { CliError } from './args.ts';

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory, not a file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is not a directory',
};

/** A CliError for a file that could not be read or decoded: one line, the library's message. */
export function fileError(path: string, e: unknown): CliError {
  const err = e as Error & { code?: string };
  if (typeof err?.code === 'string' && ERRNO_TEXT[err.code]) return new CliError(`cannot read '${path}': ${ERRNO_TEXT[err.code]}`);
  const msg = err instanceof Error ? err.message : String(e);
  // input-file errors, and loaders that were given the path, name the file already
  const named = err?.name === 'InputFileError' || msg.startsWith(`${path}:`);
  return new CliError(named ? oneLine(msg, 500) : `${path}: ${oneLine(msg, 500)}`);
}

/**
 * An error from a library call on the user's file (a malformed ONNX graph, a Keras model.json
 * with an unsupported layer, ...) as a CliError with the library's message; a programming error
 * (TypeError, ReferenceError) is passed on as it is, so its class name shows.
 */
export function userError(e: unknown): unknown {
  if (e instanceof CliError) return e;
  const err = e as Error;
  if (!(err instanceof Error) || err.name === 'TypeError' || err.name === 'ReferenceError') return e;
  return new CliError(oneLine(err.message, 1000));
}

/** Collapse whitespace to one line and cut to `max` characters. */
export function oneLine(s: string, max = Infinity): string {
  const t = s.replace(/\s*\n\s*/g, ' ').replace(/[\u0000-\u001f\u007f]/g, ' ');
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

export function formatInt(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** m:ss (or h:mm:ss). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(sec).padStart(2, '0')}`;
}

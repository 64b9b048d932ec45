/**
 * The regression folder: every failing input found is written to regressions/<format>/ under a
 * name derived from its hash (so the same input found twice is one file), and replayed by
 * test/fuzz.regressions.test.ts on every run. known.json lists the findings whose fix belongs to
 * another change, with the error they gave when found; their replay is a todo until that fix lands,
 * and the fuzz run does not fail on a failure with the same signature.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REGRESSIONS_DIR } from './corpus.ts';

export function regressionName(bytes: Uint8Array): string {
  return `${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.bin`;
}

/** Write a failing input; returns its path relative to the regressions folder. */
export function saveRegression(format: string, bytes: Uint8Array, dir = REGRESSIONS_DIR): string {
  const d = join(dir, format);
  mkdirSync(d, { recursive: true });
  const name = regressionName(bytes);
  const path = join(d, name);
  if (!existsSync(path)) writeFileSync(path, bytes);
  return `${format}/${name}`;
}

export interface KnownFinding {
  /** `<format>/<hash>.bin` */
  file: string;
  harness: string;
  kind: 'crash' | 'hang' | 'memory';
  /** Error class and the first source frame it came from: how a fresh run recognises the same bug. */
  signature: string;
  /** The error as found. */
  error: string;
  /** Which change fixes it. */
  owner: string;
}

export function readKnown(dir = REGRESSIONS_DIR): KnownFinding[] {
  const p = join(dir, 'known.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as KnownFinding[]) : [];
}

/**
 * What identifies a bug across inputs: the kind, the error class, and the first frame in src/ with
 * its line number dropped (so an edit elsewhere in the file keeps the signature).
 */
export function signatureOf(kind: string, original: unknown): string {
  if (!(original instanceof Error)) return `${kind}`;
  const frame = (original.stack ?? '').split('\n').find((l) => l.includes('/src/')) ?? '';
  const m = /\/src\/([^:)]+)/.exec(frame);
  const fn = /at (?:new )?([\w.$<>]+) \(/.exec(frame)?.[1] ?? '?';
  return `${kind} ${original.constructor?.name ?? original.name} at ${fn} (${m ? m[1] : '?'})`;
}

/** Seed corpora: committed files under corpus/<format>/, read once per process. */
import { readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FUZZ_DIR = dirname(fileURLToPath(import.meta.url));
export const CORPUS_DIR = join(FUZZ_DIR, 'corpus');
export const REGRESSIONS_DIR = join(FUZZ_DIR, 'regressions');
export const FIXTURES_DIR = join(FUZZ_DIR, '..', 'fixtures');

/** The files of a folder, sorted by name (so that seed indices, and so fixed-seed runs, are stable). */
export function readFolder(dir: string, filter: (name: string) => boolean = () => true): { name: string; bytes: Uint8Array }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .filter((n) => filter(n) && statSync(join(dir, n)).isFile())
    .map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(dir, name))) }));
}

export function corpus(format: string): Uint8Array[] {
  return readFolder(join(CORPUS_DIR, format)).map((f) => f.bytes);
}

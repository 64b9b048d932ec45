/**
 * Replays every input in test/fuzz/regressions/<format>/ through its harness: each once made a
 * loader crash, hang or blow up memory, and must now pass the fuzz property (return, or throw a
 * documented error class). Inputs listed in regressions/known.json are fixed by another change and
 * are todo until it lands. Hangs and memory findings replay in a child process under the fuzz
 * watchdog (5 s, 1 GB), so a regression cannot stall or kill the suite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { harnessByFormat } from './fuzz/all.ts';
import { checkInput } from './fuzz/harness.ts';
import { REGRESSIONS_DIR, FUZZ_DIR } from './fuzz/corpus.ts';
import { readKnown } from './fuzz/regressions.ts';

const known = new Map(readKnown().map((k) => [k.file, k]));
const formats = existsSync(REGRESSIONS_DIR) ? readdirSync(REGRESSIONS_DIR).filter((d) => statSync(join(REGRESSIONS_DIR, d)).isDirectory()).sort() : [];

test('every regression folder belongs to a harness, and every known finding has its input', () => {
  for (const f of formats) assert.ok(harnessByFormat(f), `regressions/${f}: no harness has format '${f}'`);
  for (const k of known.values()) assert.ok(existsSync(join(REGRESSIONS_DIR, k.file)), `known.json lists ${k.file}, which is not in the regression folder`);
});

for (const format of formats) {
  const h = harnessByFormat(format);
  if (!h) continue;
  for (const name of readdirSync(join(REGRESSIONS_DIR, format)).filter((n) => n.endsWith('.bin')).sort()) {
    const file = `${format}/${name}`;
    const k = known.get(file);
    test(`regression ${h.name} ${file}`, k ? { todo: `owner branch fixes it (${k.owner}): ${k.error.slice(0, 160)}` } : {}, () => {
      const path = join(REGRESSIONS_DIR, file);
      if (k && k.kind !== 'crash') {
        const r = spawnSync(process.execPath, ['--max-old-space-size=1024', '--import', 'tsx', join(FUZZ_DIR, 'run.ts'), '--harness', h.name, '--replay', path], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
        assert.ok(r.stdout.includes('FUZZ-REPLAY ok'), `${file}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
        return;
      }
      checkInput(h, new Uint8Array(readFileSync(path)));
    });
  }
}

/**
 * The fuzz harnesses in CI: each runs in its own child process (heap capped at 1 GB) for a bounded
 * number of executions with a fixed seed, and the test fails on a crash (an exception of a class
 * the loader does not document), a call over 5 s, or memory growth over 1 GB. A failure found is
 * saved under test/fuzz/regressions/ by the runner. Findings listed in regressions/known.json
 * (fixed by another change) are reported as todo instead of failing the suite.
 *
 * Scale with RECUR_FUZZ_RUNS (executions per harness; default sized so all harnesses together take
 * about two minutes on two cores) and RECUR_FUZZ_SECONDS (a time cap per harness, default 12).
 * RECUR_FUZZ_SEED changes the seed. The long run with random seeds is `npm run fuzz`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HARNESSES } from './fuzz/all.ts';
import { readKnown } from './fuzz/regressions.ts';
import { runHarness } from './fuzz/child.mjs';

// executions per harness, relative to the default budget; the slow loaders (task rebuild, ONNX
// compile, Keras) get fewer
const WEIGHT: Record<string, number> = { 'model-config/load': 0.2, 'onnx/load': 0.3, 'keras/parse': 0.4, 'keras/weights': 0.4, 'data/csv': 0.5, 'data/numeric-csv': 0.5, 'data/tokenize-vocab': 0.5 };
const RUNS = Number(process.env.RECUR_FUZZ_RUNS ?? 5000);
const SECONDS = Number(process.env.RECUR_FUZZ_SECONDS ?? 12);
const SEED = Number(process.env.RECUR_FUZZ_SEED ?? 20240601);
const known = readKnown();

for (const h of HARNESSES) {
  test(`fuzz ${h.name}`, (t) => {
    const runs = Math.max(10, Math.round(RUNS * (WEIGHT[h.name] ?? 1)));
    const r = runHarness({ harness: h.name, format: h.format, runs, seconds: SECONDS, seed: SEED });
    t.diagnostic(`${h.name}: ${r.executions ?? '?'} executions in ${r.seconds.toFixed(1)} s (seed ${SEED})`);
    const isKnown = (f: { signature: string; kind: string }) => known.some((k) => k.harness === h.name && (k.signature === f.signature || (f.signature.endsWith('(child killed)') && k.kind === f.kind)));
    const fresh = r.failures.filter((f) => !isKnown(f));
    const old = r.failures.filter((f) => isKnown(f));
    for (const f of old) t.diagnostic(`known finding (owner branch fixes it): ${f.message}`);
    if (old.length > 0 && fresh.length === 0) t.todo('known findings: owner branch fixes them');
    assert.deepEqual(
      fresh.map((f) => `${f.kind}: ${f.message} [saved as regressions/${f.file}]`),
      [],
      'fuzzing found new failures (inputs saved under test/fuzz/regressions/; add a fix, or list them in known.json with the change that fixes them)',
    );
    if (r.executions !== null) assert.ok(r.executions > 0, 'the harness ran no input');
  });
}

/**
 * Run one fuzz harness in this process (spawned by test/fuzz.test.ts and scripts/fuzz.mjs with
 * --max-old-space-size=1024, so a heap blow-up ends this child, not the runner).
 *
 *   node --max-old-space-size=1024 --import tsx test/fuzz/run.ts --harness NAME
 *        [--runs N] [--seconds S] [--seed N] [--current FILE] [--save-dir DIR] [--stop-on-failure]
 *
 * Runs batches of fast-check properties (seed, seed+1, …) until N executions or S seconds. A
 * failing property is shrunk, its input saved to the regression folder, and the run goes on with
 * the next seed, collecting distinct failures by signature. A watchdog thread catches what the
 * property cannot see from inside a call: a call still running after 5 s, or memory 1 GB above the
 * start; it writes the report line and kills the process. The input in flight is in --current
 * (rewritten before every call) so the parent can save it. The last stdout line is a JSON summary.
 */
import fc from 'fast-check';
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { harnessByName } from './all.ts';
import { checkInput, FuzzFailure, HANG_MS, MEMORY_BYTES } from './harness.ts';
import { saveRegression, signatureOf, readKnown } from './regressions.ts';

export interface RunSummary {
  harness: string;
  executions: number;
  seconds: number;
  seed: number;
  failures: { signature: string; kind: string; message: string; file: string; known: boolean; seed: number }[];
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const h = harnessByName(arg('harness') ?? '');
const maxRuns = Number(arg('runs') ?? Infinity);
const maxSeconds = Number(arg('seconds') ?? Infinity);
let seed = Number(arg('seed') ?? Date.now() % 2 ** 31);
const firstSeed = seed;
const currentPath = arg('current');
const saveDir = arg('save-dir');
const stopOnFailure = process.argv.includes('--stop-on-failure');
const known = new Set(readKnown().map((k) => k.signature));

// shared with the watchdog: [0] start time of the call in flight (ms since time origin, 0 = none)
const shared = new Float64Array(new SharedArrayBuffer(16));
const watchdog = new Worker(
  `
  const { workerData } = require('node:worker_threads');
  const { writeSync } = require('node:fs');
  const shared = new Float64Array(workerData.sab);
  const base = process.memoryUsage().rss;
  const origin = workerData.origin;
  setInterval(() => {
    const start = shared[0];
    const now = Date.now() - origin;
    let why = null;
    if (start > 0 && now - start > workerData.hangMs) why = { kind: 'hang', message: workerData.name + ': one call has run for over ' + workerData.hangMs / 1000 + ' s' };
    const rss = process.memoryUsage().rss;
    if (rss - base > workerData.memBytes) why = { kind: 'memory', message: workerData.name + ': memory grew by ' + Math.round((rss - base) / 1048576) + ' MB (limit ' + workerData.memBytes / 1048576 + ' MB)' };
    if (why) {
      writeSync(2, '\\nFUZZ-WATCHDOG ' + JSON.stringify(why) + '\\n');
      process.kill(process.pid, 'SIGKILL');
    }
  }, 100);
  require('node:worker_threads').parentPort.postMessage('ready');
  `,
  { eval: true, workerData: { sab: shared.buffer, hangMs: HANG_MS, memBytes: MEMORY_BYTES, name: h.name, origin: Date.now() - performance.now() } },
);
// the watchdog must be running before the first (synchronous, never-yielding) batch starts
await new Promise((resolve) => watchdog.once('message', resolve));
watchdog.unref();

const fd = currentPath ? openSync(currentPath, 'w') : -1;
let executions = 0;
const t0 = performance.now();
const failures: RunSummary['failures'] = [];
const seen = new Set<string>();

function once(bytes: Uint8Array): void {
  if (fd >= 0) {
    ftruncateSync(fd, 0);
    writeSync(fd, bytes, 0, bytes.length, 0);
  }
  executions++;
  shared[0] = performance.now();
  try {
    checkInput(h, bytes);
  } finally {
    shared[0] = 0;
  }
}

// --replay FILE: one input, under the same watchdog (how a saved hang or memory finding is replayed)
const replay = arg('replay');
if (replay) {
  once(new Uint8Array(readFileSync(replay)));
  process.stdout.write('\nFUZZ-REPLAY ok\n');
  process.exit(0);
}

const arb = h.arbitrary();
const timeLeft = () => maxSeconds * 1000 - (performance.now() - t0);
while (executions < maxRuns && timeLeft() > 0) {
  const batch = Math.max(1, Math.min(Number.isFinite(maxRuns) ? maxRuns - executions : 2000, 2000));
  const result = fc.check(fc.property(arb, (b) => once(b)), { seed, numRuns: batch, interruptAfterTimeLimit: Math.max(1, timeLeft()), markInterruptAsFailure: false });
  if (result.failed && result.counterexample) {
    const bytes = result.counterexample[0] as Uint8Array;
    const err = result.errorInstance;
    const kind = err instanceof FuzzFailure ? err.kind : 'crash';
    const signature = signatureOf(kind, err instanceof FuzzFailure ? (err.original ?? err) : err);
    if (!seen.has(signature)) {
      seen.add(signature);
      // a known finding already has its input in the folder; do not add one per run
      const file = known.has(signature) ? '(known)' : saveRegression(h.format, bytes, saveDir);
      failures.push({ signature, kind, message: err instanceof Error ? err.message.slice(0, 500) : String(err), file, known: known.has(signature), seed });
    }
    if (stopOnFailure) break;
  }
  seed = (seed + 1) % 2 ** 31;
}
if (fd >= 0) closeSync(fd);
const summary: RunSummary = { harness: h.name, executions, seconds: (performance.now() - t0) / 1000, seed: firstSeed, failures };
process.stdout.write(`\nFUZZ-SUMMARY ${JSON.stringify(summary)}\n`);
process.exit(0);

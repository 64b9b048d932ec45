/**
 * The long local fuzz run: every harness with random seeds for a share of --seconds, each in its
 * own child (heap capped at 1 GB) under NODE_V8_COVERAGE, then a report: executions per harness,
 * distinct failures (inputs saved under test/fuzz/regressions/), and line coverage of the loaders
 * (src/io, src/onnx, src/interop, src/data, src/models) from V8's coverage JSON: the share of named
 * functions run at least once (V8 offsets are of the transpiled text, so lines are not mapped).
 *
 *   npm run fuzz -- --seconds 600 [--only onnx]
 *
 * Harnesses run one after another; to use more cores start several runs with different --only.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (n, d) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const seconds = Number(opt('seconds', 300));
const only = opt('only', '');

// the harness names, from the registry (one short child so this script needs no TS loader itself)
const list = await new Promise((resolve, reject) => {
  const c = spawn(process.execPath, ['--import', 'tsx', '-e', "import('./test/fuzz/all.ts').then(m => console.log(JSON.stringify(m.HARNESSES.map(h => [h.name, h.format]))))"], { cwd: ROOT });
  let out = '';
  c.stdout.on('data', (d) => (out += d));
  c.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error('could not list harnesses'))));
});
const harnesses = list.filter(([n]) => n.includes(only));
const cov = mkdtempSync(join(tmpdir(), 'recur-fuzz-cov-'));
const { runHarness } = await import('../test/fuzz/child.mjs');
const per = seconds / harnesses.length;

// a harness whose child dies (hang, out of memory) is restarted with a new seed until its time is up
async function fuzzOne([name, format]) {
  const end = Date.now() + per * 1000;
  const total = { harness: name, executions: 0, restarts: 0, failures: [] };
  while (Date.now() < end - 500) {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const r = await new Promise((resolve) => setImmediate(() => resolve(runHarness({ harness: name, format, seconds: Math.max(1, (end - Date.now()) / 1000), seed, env: { NODE_V8_COVERAGE: cov } }))));
    total.executions += r.executions ?? 0;
    total.restarts += r.executions === null ? 1 : 0;
    for (const f of r.failures) if (!total.failures.some((g) => g.signature === f.signature)) total.failures.push(f);
    if (r.executions === null && total.restarts > 20) break;
  }
  return total;
}

const results = [];
for (const h of harnesses) {
  const r = await fuzzOne(h);
  results.push(r);
  console.log(`${r.harness}: ${r.executions} executions, ${r.failures.length} distinct failures${r.restarts ? ` (${r.restarts} child restarts)` : ''}`);
}

// coverage: functions of the loader folders that ran at least once. V8 reports offsets in the
// transpiled text tsx ran, not the .ts source, so lines cannot be mapped without source maps;
// function names survive the transpile, so function coverage is exact and needs nothing else
const fns = new Map(); // "dir/file.ts#name@offset" -> ran
for (const f of readdirSync(cov)) {
  if (!f.endsWith('.json')) continue;
  for (const sc of JSON.parse(readFileSync(join(cov, f), 'utf8')).result) {
    const m = /\/src\/((?:io|onnx|interop|data|models)\/[^?]+\.ts)$/.exec(sc.url);
    if (!m) continue;
    for (const fn of sc.functions) {
      if (!fn.functionName) continue;
      const key = `${m[1]}#${fn.functionName}@${fn.ranges[0].startOffset}`;
      fns.set(key, (fns.get(key) ?? false) || fn.ranges[0].count > 0);
    }
  }
}
const byDir = new Map();
for (const [k, ran] of fns) {
  const d = k.split('/')[0];
  const t = byDir.get(d) ?? { lines: 0, hit: 0 };
  t.lines++;
  if (ran) t.hit++;
  byDir.set(d, t);
}
rmSync(cov, { recursive: true, force: true });
const total = results.reduce((a, r) => a + r.executions, 0);
console.log(`\ntotal: ${total} executions in ${seconds} s over ${results.length} harnesses`);
console.log('function coverage of the loaders (named functions run at least once / defined, in the modules loaded):');
for (const [d, t] of [...byDir].sort()) console.log(`  src/${d}: ${t.hit}/${t.lines} functions (${((100 * t.hit) / Math.max(1, t.lines)).toFixed(1)}%)`);
console.log('\ndistinct failures:');
for (const r of results) for (const f of r.failures) console.log(`  ${r.harness} ${f.kind}: ${f.message.slice(0, 300)} -> regressions/${f.file}`);

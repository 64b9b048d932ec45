/**
 * The recur benchmark harness: `npm run bench [-- --quick] [--only W1,GRU,...] [--json FILE]`.
 *
 * In one process it runs the anchors' workload W1 (character LM: Embedding(65, H) → LSTM(H=256)
 * over T=64, B=32 → Linear(H, 65) → softmax cross-entropy, Adam lr 1e-3, global-norm clip 5) and
 * its variants (GRU, tanh RNN, 2 layers, H=512/B=64/T=100) on every recur backend that loads, then
 * the same workloads on TensorFlow.js (wasm and cpu backends) and PyTorch in child processes, and a
 * SGEMM micro-benchmark against NumPy/OpenBLAS. Prints Markdown tables and writes JSON.
 *
 * Options:
 *   --quick              a smoke run: 1 warm-up + 1-3 timed steps, slow combinations skipped
 *                        (about 1 CPU-minute of work; 190 s measured on a saturated 2-core machine)
 *   --only LIST          workloads (W1, GRU, RNN, L2, H512) and/or GEMM, comma-separated
 *   --systems LIST       recur-js, recur-wasm-1t, recur-wasm, recur-wasm-rows, recur-wasm-layered, recur-webgpu, tfjs-wasm, tfjs-cpu,
 *                        pytorch-1t, pytorch-2t; a prefix such as recur or pytorch selects all of its kind (default:
 *                        all but recur-webgpu and recur-wasm-layered, which run only when named: in Node the first
 *                        needs the `webgpu` package).
 *                        recur-wasm-rows is an ablation: recur-wasm with the embedding-table input projection
 *                        turned off (the recurrent layer projects all T·B rows, as PyTorch does); recur-wasm-layered
 *                        one with pipelining across layers turned off (stacks run layer after layer)
 *   --json FILE          where to write the results (default bench/results/latest.json)
 *   --wasm-opts JSON     options for loadWasmBackend, e.g. {"relaxedSimd":true}; with "threads" the wasm
 *                        backend runs once with them, else twice (1 thread, and its default)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CostModel, FULL, QUICK, errorMessage, type Policy, type RunResult } from './lib/measure.ts';
import { WORKLOADS, selectWorkloads, trainFlops, type Workload } from './lib/workloads.ts';
import { loadConfig, recurConfigs, runRecur, type BackendStatus } from './lib/recur.ts';
import { GEMM_SHAPES, PYTHON, blasEnv, gemmNumpy, gemmRecur, type GemmResult } from './lib/gemm.ts';
import { gemmTable, resultsTable } from './lib/report.ts';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH, '..');
const ANCHOR_SYSTEMS = ['tfjs-wasm', 'tfjs-cpu', 'pytorch-1t', 'pytorch-2t'];

interface Args {
  quick: boolean;
  only: string[] | null;
  systems: string[] | null;
  json: string;
  wasmOpts: Record<string, unknown>;
}

function usage(msg?: string): never {
  const text = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith(' *   ')).map((l) => l.slice(3)).join('\n');
  if (msg) process.stderr.write(`bench: ${msg}\n`);
  process.stderr.write(`usage: npm run bench -- [options]\n${text}\n`);
  process.exit(msg ? 2 : 0);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, only: null, systems: null, json: join(BENCH, 'results', 'latest.json'), wasmOpts: {} };
  const list = (v: string | undefined, flag: string): string[] => {
    if (!v) usage(`${flag} needs a value`);
    return v.split(',').map((s) => s.trim()).filter(Boolean);
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const [flag, inline] = f.includes('=') ? [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)] : [f, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    if (flag === '--quick') a.quick = true;
    else if (flag === '--only') a.only = list(value(), flag);
    else if (flag === '--systems') a.systems = list(value(), flag);
    else if (flag === '--json') {
      const v = value();
      if (!v) usage('--json needs a file name');
      a.json = resolve(v);
    } else if (flag === '--wasm-opts') {
      try {
        a.wasmOpts = JSON.parse(value() ?? '') as Record<string, unknown>;
      } catch {
        usage('--wasm-opts needs a JSON object');
      }
    } else if (flag === '--help' || flag === '-h') usage();
    else usage(`unknown option '${f}'`);
  }
  if (a.only) {
    const known = new Set([...WORKLOADS.map((w) => w.name.toUpperCase()), 'GEMM']);
    const bad = a.only.filter((s) => !known.has(s.toUpperCase()));
    if (bad.length) usage(`--only: unknown name(s) ${bad.join(', ')} (known: ${WORKLOADS.map((w) => w.name).join(', ')}, GEMM)`);
  }
  return a;
}

const BLAS_PROBE = [
  'import numpy as np',
  'a = np.ones((64, 64), np.float32); a @ a',
  'libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.lower() and ".so" in l})',
  'print(" ".join(libs) or "none")',
].join('\n');

const log = (s: string): void => void process.stderr.write(`${s}\n`);

function sh(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: 60_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

function machineInfo(): Record<string, unknown> {
  let cpu = cpus()[0]?.model ?? 'unknown';
  let flags = '';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    cpu = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? cpu;
    flags = /^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '';
  } catch { /* not Linux */ }
  const has = (f: string): boolean => flags.split(' ').includes(f);
  const torch = sh(PYTHON, ['-c', 'import torch; print(torch.__version__)'], blasEnv());
  // Which BLAS the Python anchors really load: Debian's python3-torch and numpy go through
  // libblas.so.3, which is the slow reference BLAS unless libopenblas0-pthread is installed.
  const blas = sh(PYTHON, ['-c', BLAS_PROBE], blasEnv());
  return {
    nproc: sh('nproc', []) ?? String(cpus().length),
    cpu,
    simd: ['avx2', 'fma', 'avx512f'].filter(has),
    node: process.version,
    v8: process.versions.v8,
    torch: torch ?? 'not installed',
    python_blas: blas ?? 'unknown',
    platform: `${process.platform}-${process.arch}`,
  };
}

/** Run a child that writes its results as JSON to the file named by its last argument. */
function child(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ json: unknown; error?: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'recur-bench-'));
  const out = join(dir, 'out.json');
  return new Promise((done) => {
    const p = spawn(cmd, [...args, out], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d: string) => {
      tail = (tail + d).slice(-2000);
      for (const line of d.split('\n')) if (line.startsWith('  ')) log(line);
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      let json: unknown = null;
      try {
        json = JSON.parse(readFileSync(out, 'utf8'));
      } catch { /* reported below */ }
      rmSync(dir, { recursive: true, force: true });
      const last = tail.trim().split('\n').filter((l) => !l.startsWith('  ')).pop() ?? '';
      const error = signal ? `killed (${signal}) after ${timeoutMs / 1000} s` : code !== 0 ? `exited with ${code}: ${last.slice(0, 300)}` : undefined;
      done({ json, error });
    });
  });
}

function missing(workloads: readonly Workload[], system: string, status: RunResult['status'], note: string): RunResult[] {
  return workloads.map((w) => ({ workload: w.name, system, status, note }));
}

/** A child's results, completed with a failure entry for every workload it did not get to. */
function childResults(workloads: readonly Workload[], system: string, got: RunResult[] | undefined, error: string | undefined, what: string): RunResult[] {
  const have = got ?? [];
  const left = workloads.filter((w) => !have.some((r) => r.workload === w.name));
  return [...have, ...missing(left, system, 'failed', `failed: ${what} child ${error ?? 'wrote no result for it'}`)];
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const policy: Policy = args.quick ? QUICK : FULL;
  const onlyGemm = args.only !== null && args.only.every((s) => s.toUpperCase() === 'GEMM');
  const workloads = onlyGemm ? [] : selectWorkloads(args.only?.filter((s) => s.toUpperCase() !== 'GEMM') ?? null);
  const doGemm = args.only === null || args.only.some((s) => s.toUpperCase() === 'GEMM');
  const want = (s: string): boolean => args.systems === null || args.systems.some((x) => s === x || s.startsWith(`${x}-`));
  const started = new Date();
  const t0 = performance.now();
  const load0 = loadavg();

  const machine = machineInfo();
  const refBlas = !/openblas|mkl|blis/i.test(String(machine.python_blas));
  if (refBlas) log(`WARNING: Python loads ${String(machine.python_blas)}, not OpenBLAS: PyTorch and NumPy figures will be far below the anchors' (apt-get install libopenblas0-pthread)`);
  log(`recur benchmark (${args.quick ? 'quick' : 'full'}) on ${machine.nproc} × ${machine.cpu}, Node ${machine.node}, torch ${machine.torch}; load average ${load0.map((x) => x.toFixed(2)).join(' ')}`);

  // recur-webgpu and recur-wasm-layered only when named: the default and the prefix 'recur' leave
  // them out (see recurConfigs; the second differs from recur-wasm only on stacked workloads)
  const onlyNamed = ['recur-webgpu', 'recur-wasm-layered'];
  const configs = recurConfigs(args.wasmOpts).filter((c) => (onlyNamed.includes(c.system) ? args.systems?.includes(c.system) === true : want(c.system)));
  const systems = [...configs.map((c) => c.system), ...ANCHOR_SYSTEMS.filter(want)];
  const backends: BackendStatus[] = [];
  const gemm: GemmResult[] = [];
  const results: RunResult[] = [];
  const gemmMinMs = args.quick ? 150 : 800;

  // ---- recur, one configuration at a time: GEMM, then the workloads -----------------------------
  for (const c of configs) {
    if (c.rowProjection && workloads.length === 0) continue; // the ablation has no GEMM figures of its own
    const { status, loaded } = await loadConfig(c);
    backends.push(status);
    log(`${c.system}: ${status.available ? `threads ${status.threads ?? 'unknown'}; ${status.note}` : status.note}`);
    if (!loaded) {
      results.push(...missing(workloads, c.system, 'not available', status.note));
      continue;
    }
    try {
      if (doGemm && !c.rowProjection) {
        log(`gemm: ${c.system}`);
        gemm.push(...gemmRecur(c.system, loaded.backend, loaded.threads, GEMM_SHAPES, gemmMinMs));
      }
      const cost = new CostModel(policy);
      for (const w of workloads) {
        log(`${c.system} ${w.name} (${w.label}, ${(trainFlops(w) / 1e9).toFixed(1)} GFLOP/step)…`);
        const r = await runRecur(w, c.system, loaded.backend, loaded.threads ?? NaN, policy, cost, c.rowProjection);
        results.push(r);
        log(`  ${c.system} ${w.name}: ${r.status === 'ok' ? `${r.train_tok_s} tok/s (${r.ms_per_step} ms/step, n=${r.steps}, CPU/wall ${r.cpu_share}), ${r.stream_us_per_step} µs/stream step` : r.note}`);
      }
    } finally {
      loaded.dispose();
    }
  }

  // ---- NumPy / OpenBLAS GEMM -------------------------------------------------------------------
  let numpyVersion: string | undefined;
  if (doGemm) {
    for (const threads of [...new Set([cpus().length, 1])]) {
      log(`gemm: numpy/OpenBLAS, ${threads} thread(s)`);
      const r = gemmNumpy(GEMM_SHAPES, gemmMinMs, threads);
      numpyVersion ??= r.version;
      gemm.push(...r.results);
    }
  }

  // ---- TensorFlow.js -------------------------------------------------------------------------
  let tfjsVersion: string | undefined;
  const tfjsInfo: Record<string, unknown> = {};
  for (const backend of ['wasm', 'cpu'] as const) {
    const system = `tfjs-${backend}`;
    if (!want(system) || workloads.length === 0) continue;
    log(`${system}: child process…`);
    const spec = JSON.stringify({ backend, workloads, policy });
    const script = join(BENCH, 'anchors', 'tfjs_bench.ts');
    const r = await child(process.execPath, ['--import', 'tsx', script, spec], process.env, args.quick ? 120_000 : 420_000);
    const j = r.json as { tfjs?: string; results?: RunResult[] } | null;
    results.push(...childResults(workloads, system, j?.results, r.error, 'TF.js'));
    if (j) {
      tfjsVersion = j.tfjs;
      const { results: _r, ...info } = j;
      tfjsInfo[backend] = info;
    }
  }

  // ---- PyTorch -----------------------------------------------------------------------------------
  // Two configurations: one thread (torch and OpenBLAS), like for like with the single-threaded
  // JavaScript/wasm systems, and the anchors' two threads (OpenBLAS at its default). On a shared
  // 2-core machine the two-thread run collapses whenever another process holds a core.
  let torchInfo: Record<string, unknown> = {};
  let crosscheck: Record<string, unknown> | null = null;
  const torchConfigs = [
    { system: 'pytorch-1t', threads: 1, env: blasEnv({ OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' }) },
    { system: 'pytorch-2t', threads: 2, env: blasEnv() },
  ].filter((c) => want(c.system));
  if (torchConfigs.length > 0 && workloads.length > 0 && machine.torch === 'not installed') {
    for (const c of torchConfigs) results.push(...missing(workloads, c.system, 'not available', `not available: ${PYTHON} has no torch (apt-get install python3-torch libopenblas0-pthread)`));
  } else if (workloads.length > 0) {
    for (const c of torchConfigs) {
      log(`${c.system}: child process (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset)…`);
      const spec = JSON.stringify({ system: c.system, workloads, policy, threads: c.threads });
      const r = await child(PYTHON, [join(BENCH, 'anchors', 'torch_bench.py'), spec], c.env, args.quick ? 120_000 : 420_000);
      const j = r.json as { torch?: string; threads?: number; results?: RunResult[] } | null;
      results.push(...childResults(workloads, c.system, j?.results, r.error, 'PyTorch'));
      if (j) torchInfo = { ...torchInfo, torch: j.torch, [c.system]: { threads: j.threads } };
    }
    // Cross-check the copy against the shared anchor script itself (W1, one thread, full runs only).
    const anchor = resolve(ROOT, '..', 'shared', 'anchors', 'torch_rnn_bench.py');
    const w1 = workloads.find((w) => w.name === 'W1');
    if (!args.quick && w1 && existsSync(anchor) && want('pytorch-1t')) {
      log('pytorch: shared anchor script on W1, 1 thread (cross-check)…');
      const a = spawnSync(PYTHON, [anchor, w1.cell, String(w1.V), String(w1.H), String(w1.B), String(w1.T), String(w1.layers), '1'],
        { env: blasEnv({ OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' }), encoding: 'utf8', timeout: 120_000 });
      try {
        crosscheck = JSON.parse(a.stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
      } catch {
        crosscheck = { error: `the shared anchor script failed (${a.status}): ${(a.stderr || '').trim().split('\n').pop() ?? ''}` };
      }
    }
  }

  // ---- report ------------------------------------------------------------------------------------
  const load1 = loadavg();
  const wallS = (performance.now() - t0) / 1000;
  const out: string[] = [];
  out.push(`recur benchmark — ${args.quick ? 'quick (smoke) run' : 'full run'}, ${started.toISOString()}`);
  out.push(`machine: ${machine.nproc} CPUs, ${machine.cpu} (${(machine.simd as string[]).join(', ')}), Node ${machine.node}, torch ${machine.torch}, numpy ${numpyVersion ?? '–'}, TF.js ${tfjsVersion ?? '–'}`);
  out.push(`Python BLAS: ${String(machine.python_blas)}${refBlas ? ' — WARNING: not OpenBLAS, PyTorch/NumPy figures are not the anchors\' (install libopenblas0-pthread)' : ''}`);
  for (const b of backends) out.push(`${b.system}: ${b.available ? `threads ${b.threads ?? 'unknown'}; ${b.note}` : b.note}`);
  out.push(`load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${load1.map((x) => x.toFixed(2)).join(' ')}; wall time ${wallS.toFixed(0)} s`);
  out.push('');
  if (workloads.length) {
    const notes: string[] = [];
    out.push('Wall clock:');
    out.push('');
    out.push(resultsTable(workloads, results, systems, notes));
    out.push('');
    out.push('Ratios are speed ratios, recur ÷ anchor (> 1: recur is faster): train = tokens/s ÷ tokens/s, stream = anchor µs ÷ recur µs; "PyTorch" is the faster of its 1- and 2-thread runs for that column.');
    out.push('ms/step is the median of n timed steps after warm-up; stream = batch 1, one token per call, state carried, no head.');
    out.push('CPU/wall = median process CPU time ÷ wall time per step: about 1 for one busy thread with a core to itself; below 1, the run was starved by other processes.');
    notes.forEach((n, i) => out.push(`[${i + 1}] ${n}`));
    if (crosscheck) out.push(`PyTorch cross-check, the shared anchor script on W1 with 1 thread (mean over ≥ 5 s): ${JSON.stringify(crosscheck)}`);
    out.push('');
    out.push('Single-threaded runs per CPU-second of the process (insensitive to time slicing by other processes; ratios vs PyTorch with 1 thread):');
    out.push('');
    out.push(resultsTable(workloads, results, systems, [], true));
    out.push('');
  }
  if (gemm.length) {
    out.push('SGEMM, wall clock:');
    out.push('');
    out.push(gemmTable(gemm));
    out.push('');
    out.push('Fractions are of the faster OpenBLAS run (all cores or 1 thread) for that shape, the machine\'s BLAS peak as measured in this run.');
    out.push('');
    out.push('SGEMM, single-threaded runs per CPU-second (fractions of OpenBLAS on 1 thread):');
    out.push('');
    out.push(gemmTable(gemm, true));
  }
  process.stdout.write(`${out.join('\n')}\n`);

  mkdirSync(dirname(args.json), { recursive: true });
  const doc = {
    format: 'recur.bench',
    version: 1,
    date: started.toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    mode: args.quick ? 'quick' : 'full',
    wall_s: Math.round(wallS),
    machine: { ...machine, numpy: numpyVersion ?? null, tfjs: tfjsVersion ?? null, loadavg_start: load0, loadavg_end: load1 },
    policy,
    backends,
    anchors: { pytorch: torchInfo, tfjs: tfjsInfo },
    workloads: workloads.map((w) => ({ ...w, train_gflop_per_step: +(trainFlops(w) / 1e9).toFixed(2) })),
    results,
    pytorch_crosscheck: crosscheck,
    gemm,
  };
  writeFileAtomic(args.json, `${JSON.stringify(doc, null, 2)}\n`);
  log(`results written to ${args.json}`);
}

main().then(
  () => process.exit(0), // loaded backends may keep worker threads alive
  (e: unknown) => {
    log(`bench: ${errorMessage(e)}`);
    process.exit(1);
  },
);

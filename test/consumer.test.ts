/**
 * The package as its users get it: `npm pack` the repository, install the tarball into a fresh
 * temporary project (a real `npm install`, dependencies from the npm cache or the registry), and use
 * it there the ways JavaScript and TypeScript projects do —
 *   1. a plain Node ESM script trains on the js and the wasm backend (loss falls) and saves and
 *      reloads a model file through recurjs/node (same output after reloading);
 *   2. `require('recurjs')` from CommonJS (Node ≥ 20.19 requires ESM without top-level await);
 *   3. TypeScript, strict, no skipLibCheck: `nodenext` without @types/node importing the core and
 *      the other browser-safe entries (their declarations must not need Node's types), `nodenext`
 *      with @types/node importing recurjs/node too, and `bundler` resolution;
 *   4. an esbuild browser bundle of 'recurjs' + 'recurjs/wasm' with no externals trains in headless
 *      Chromium, with threads (COOP/COEP) and on one thread (no isolation);
 *   5. publint and @arethetypeswrong/cli (ESM-only profile) find no problems;
 *   6. `npx recur --help` and `node -e "import('recurjs')"` work with no tsx in the project;
 *   7. the built playground (dist/web, when `npm run build:web` made it before packing) is in the
 *      tarball whole, and the installed `recur playground` serves it with the isolation headers —
 *      no Vite in the consumer;
 * plus what the tarball holds (no tests; the wasm binaries) and that npm prints no warning caused
 * by the package's own configuration.
 * Takes about a minute (most of it the install); needs /usr/bin/chromium like test/browser.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string; exports: Record<string, unknown> };
const env: NodeJS.ProcessEnv = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_update_notifier: 'false' };
// npm run by `npm test` passes its own settings down as npm_* variables; the commands below must
// behave as in a user's shell
for (const k of Object.keys(env)) if (k.startsWith('npm_') && k !== 'npm_config_update_notifier' && k !== 'npm_config_cache') delete env[k];

let tmp = '';
let tarball = '';
let app = '';
let packLog = '';
let installLog = '';
let packed: { files: { path: string }[]; size: number; unpackedSize: number; entryCount: number } | null = null;

const walkFiles = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walkFiles(join(dir, n)) : [join(dir, n)]));

function run(cmd: string, args: string[], cwd: string, timeout = 120_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout });
}
function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (exit ${r.status}${r.error ? `, ${r.error.message}` : ''}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
const tsc = (project: string): SpawnSyncReturns<string> => run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', project], app);

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'recur-consumer-'));
  // dist/ as npm test just built it; rebuilt only if a source is newer (npm pack runs no prepack here)
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs'), '--if-stale'], { cwd: root, stdio: 'pipe' });
  const p = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], root);
  packLog = p.stderr;
  const info = JSON.parse(ok(p, 'npm pack')) as (typeof packed & { filename: string })[];
  packed = info[0];
  tarball = join(tmp, info[0]!.filename);
  app = join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }));
  const i = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], app, 300_000);
  installLog = `${i.stdout}\n${i.stderr}`;
  ok(i, 'npm install of the tarball');
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The installed `recur ARGS` (a server) once it has printed its URL (the first group of `urlLine`). */
async function startServer(args: string[], urlLine: RegExp): Promise<{ child: ChildProcess; url: string; exit: Promise<number | null>; output: () => { out: string; err: string } }> {
  const child = spawn(process.execPath, [join(app, 'node_modules/.bin/recur'), ...args], { cwd: app, env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const exit = new Promise<number | null>((resolve) => child.on('close', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed in 30 s:\n${out}\n${err}`)), 30_000);
    child.stdout!.on('data', () => {
      const m = urlLine.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exit.then((code) => reject(new Error(`recur ${args[0]} exited ${code}:\n${out}\n${err}`)));
  });
  return { child, url, exit, output: () => ({ out, err }) };
}

describe('the npm package, installed from its tarball', { timeout: 600_000 }, () => {
  test('the tarball: dist, bin, wasm binaries, the shipped models, docs; no tests; npm prints no warning about our config', (t) => {
    const files = packed!.files.map((f) => f.path);
    t.diagnostic(`npm pack: ${(packed!.size / 1000).toFixed(1)} kB packed, ${(packed!.unpackedSize / 1e6).toFixed(2)} MB unpacked, ${packed!.entryCount} files`);
    for (const f of ['package.json', 'README.md', 'LICENSE', 'BENCHMARKS.md', 'bin/recur.mjs', 'dist/index.js', 'dist/index.d.ts',
      'dist/backend/wasm/build/recur-simd.wasm', 'dist/backend/wasm/build/recur-relaxed.wasm', 'pretrained/manifest.json', 'pretrained/g2p.safetensors']) {
      assert.ok(files.includes(f), `${f} is not in the tarball`);
    }
    const unexpected = files.filter((f) => !/^(dist|src|bin|pretrained)\//.test(f) && !['package.json', 'README.md', 'LICENSE', 'BENCHMARKS.md'].includes(f));
    assert.deepEqual(unexpected, [], 'files outside dist/, src/, bin/, pretrained/ and the docs');
    assert.deepEqual(files.filter((f) => /(^|\/)test\/|\.test\.[cm]?[jt]s$/.test(f)), [], 'test files in the tarball');
    assert.deepEqual(files.filter((f) => f.startsWith('src/backend/wasm/build/')), [], 'the wasm binaries twice');
    for (const [what, log] of [['npm pack', packLog], ['npm install', installLog]] as const) {
      const warnings = log.split('\n').filter((l) => /npm warn/i.test(l) && /recurjs|project config|install-scripts/i.test(l));
      assert.deepEqual(warnings, [], `${what} printed warnings caused by the package`);
    }
    assert.ok(!existsSync(join(app, 'node_modules/tsx')), 'tsx was installed into the consumer (it must be a dev dependency only)');
  });

  test('plain Node ESM: trains on js and wasm, saves and reloads a model file; VERSION is package.json\'s', () => {
    writeFileSync(join(app, 'train.mjs'), `
import { LSTM, Linear, Adam, tensor, crossEntropy, backward, reshape, manualSeed, setBackend, VERSION } from 'recurjs';
import { loadWasmBackend } from 'recurjs/wasm';
import { saveModel, loadModelInto } from 'recurjs/node';
const T = 5, B = 3, I = 4, H = 8, C = 3;
function train(backend) {
  setBackend(backend);
  manualSeed(1);
  const lstm = new LSTM({ inputSize: I, hiddenSize: H });
  const head = new Linear(H, C);
  const opt = new Adam([...lstm.parameters(), ...head.parameters()], { lr: 0.05 });
  const x = tensor(Array.from({ length: T * B * I }, (_, i) => Math.sin(i)), [T, B, I]);
  const y = Array.from({ length: T * B }, (_, i) => i % C);
  const losses = [];
  for (let s = 0; s < 15; s++) {
    const loss = crossEntropy(reshape(head.forward(lstm.forward(x).output), [T * B, C]), y);
    opt.zeroGrad();
    backward(loss);
    opt.step();
    losses.push(loss.item());
  }
  return { losses, lstm, x };
}
const js = train('js');
const be = await loadWasmBackend({ threads: 2 });
const wasm = train('wasm');
saveModel('model.safetensors', wasm.lstm);
const back = new LSTM({ inputSize: I, hiddenSize: H });
loadModelInto(back, 'model.safetensors');
const a = wasm.lstm.forward(wasm.x).output.toArray(), b = back.forward(wasm.x).output.toArray();
console.log(JSON.stringify({ VERSION, threads: be.threads, js: js.losses, wasm: wasm.losses, same: a.length > 0 && a.every((v, i) => v === b[i]) }));
`);
    const r = JSON.parse(ok(run(process.execPath, ['train.mjs'], app), 'node train.mjs')) as { VERSION: string; threads: number; js: number[]; wasm: number[]; same: boolean };
    assert.equal(r.VERSION, pkg.version);
    assert.equal(r.threads, 2);
    for (const k of ['js', 'wasm'] as const) {
      assert.ok(r[k].at(-1)! < r[k][0]! * 0.5, `${k}: the loss did not fall by half in 15 steps: ${r[k].join(', ')}`);
    }
    assert.equal(r.same, true, 'the reloaded model gives another output');
    assert.ok(existsSync(join(app, 'model.safetensors')));
  });

  test('CommonJS: require(\'recurjs\') and require(\'recurjs/wasm\')', () => {
    writeFileSync(join(app, 'req.cjs'), `
const r = require('recurjs');
const w = require('recurjs/wasm');
const y = r.tensor([1, 2, 3, 4], [2, 2]);
console.log(JSON.stringify({ version: r.VERSION, lstm: typeof r.LSTM, load: typeof w.loadWasmBackend, sum: r.sum(y).item() }));
`);
    const out = ok(run(process.execPath, ['req.cjs'], app), 'node req.cjs (require of the ESM package)');
    assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1)!), { version: pkg.version, lstm: 'function', load: 'function', sum: 10 });
  });

  test('TypeScript, strict, no skipLibCheck: nodenext without Node types, nodenext with them, bundler', (t) => {
    const body = `
import { LSTM, Linear, Adam, tensor, crossEntropy, backward, reshape, type Tensor } from 'recurjs';
import { CharLM } from 'recurjs/models';
import * as data from 'recurjs/data';
import * as onnx from 'recurjs/onnx';
import * as interop from 'recurjs/interop';
const lstm = new LSTM({ inputSize: 2, hiddenSize: 3 });
const head = new Linear(3, 2);
const x: Tensor = tensor([1, 2, 3, 4], [2, 1, 2]);
const opt = new Adam([...lstm.parameters(), ...head.parameters()], { lr: 0.1 });
const loss: Tensor = crossEntropy(reshape(head.forward(lstm.forward(x).output), [2, 2]), [0, 1]);
backward(loss);
opt.step();
opt.zeroGrad();
export const used: unknown[] = [loss.item(), CharLM, data, onnx, interop];
`;
    // recurjs/wasm's declarations name WebAssembly.Memory/Module and URL, which TypeScript declares
    // only in its DOM library; the package declares stand-ins (backend/wasm/wasm-types.ts), so a
    // Node project with an ES-only `lib` and no @types/node type-checks it too.
    const wasm = `
import { loadWasmBackend, type WasmBackendOptions } from 'recurjs/wasm';
const o: WasmBackendOptions = { threads: 2 };
export const wasm: unknown[] = [loadWasmBackend, o];
`;
    const strict = { strict: true, noEmit: true, target: 'es2022' };
    const projects: [string, Record<string, unknown>, string][] = [
      // no @types/node anywhere above this folder, and no DOM library: the core's (and the task
      // models', data tools', ONNX's, Keras's) declarations must stand on ES2022 alone
      ['ts-nodenext', { ...strict, module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022'], types: [] }, body + wasm],
      ['ts-bundler', { ...strict, module: 'esnext', moduleResolution: 'bundler', lib: ['es2022', 'dom'] }, body + wasm],
      ['ts-node', { ...strict, module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022'] }, `${body}${wasm}
import { saveModel, loadModelInto, fileStore, loadKerasModel } from 'recurjs/node';
import { readFileSync } from 'node:fs';
saveModel('m.safetensors', lstm);
loadModelInto(lstm, 'm.safetensors');
export const more: unknown[] = [fileStore, loadKerasModel, readFileSync];
`],
    ];
    for (const [dir, options, src] of projects) {
      const d = join(app, dir);
      mkdirSync(d);
      const file = options.module === 'nodenext' ? 'main.mts' : 'main.ts';
      writeFileSync(join(d, file), src);
      writeFileSync(join(d, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, files: [file] }, null, 2));
      if (dir === 'ts-node') {
        // @types/node from the project's own install, visible to this consumer only
        mkdirSync(join(d, 'node_modules/@types'), { recursive: true });
        symlinkSync(join(root, 'node_modules/@types/node'), join(d, 'node_modules/@types/node'), 'dir');
      }
      const r = tsc(join(d, 'tsconfig.json'));
      t.diagnostic(`${dir}: tsc exit ${r.status}`);
      assert.equal(r.status, 0, `${dir}: type errors in a consumer (${JSON.stringify(options)}):\n${r.stdout}${r.stderr}`);
    }
    // the check can fail: a type error in the consumer is reported
    writeFileSync(join(app, 'ts-bundler/main.ts'), `${body}\nexport const wrong: string = lstm.forward(x).output;\n`);
    assert.notEqual(tsc(join(app, 'ts-bundler/tsconfig.json')).status, 0, 'tsc accepted a type error');
  });

  test('browser: an esbuild bundle (no externals) trains on wasm in Chromium, 2 threads isolated, 1 thread not', { timeout: 240_000 }, async (t) => {
    if (!existsSync(CHROMIUM)) assert.fail(`${CHROMIUM} not found: this test needs Debian's chromium package (.ci/run installs it)`);
    writeFileSync(join(app, 'page.mjs'), `
import { LSTM, Linear, Adam, tensor, crossEntropy, backward, reshape, manualSeed, setBackend } from 'recurjs';
import { loadWasmBackend } from 'recurjs/wasm';
try {
  const be = await loadWasmBackend({ threads: 2, threadMinWork: 0 });
  setBackend('wasm');
  manualSeed(3);
  const T = 6, B = 4, I = 5, H = 16, C = 3;
  const lstm = new LSTM({ inputSize: I, hiddenSize: H });
  const head = new Linear(H, C);
  const opt = new Adam([...lstm.parameters(), ...head.parameters()], { lr: 0.05 });
  const x = tensor(Array.from({ length: T * B * I }, (_, i) => Math.cos(i)), [T, B, I]);
  const y = Array.from({ length: T * B }, (_, i) => (i * 7) % C);
  const losses = [];
  for (let s = 0; s < 15; s++) {
    const loss = crossEntropy(reshape(head.forward(lstm.forward(x).output), [T * B, C]), y);
    opt.zeroGrad();
    backward(loss);
    opt.step();
    losses.push(loss.item());
  }
  globalThis.__result = { ok: true, threads: be.threads, crossOriginIsolated: globalThis.crossOriginIsolated === true, losses };
} catch (e) {
  globalThis.__result = { ok: false, error: String(e && e.stack || e) };
}
`);
    const out = join(app, 'www');
    const result = await build({
      entryPoints: [join(app, 'page.mjs')], absWorkingDir: app, outfile: join(out, 'bundle.js'),
      bundle: true, format: 'esm', platform: 'browser', target: 'es2022', logLevel: 'silent', metafile: true,
    });
    // what a bundler user does (README): the kernel modules beside the bundle, where the loader's
    // new URL('./build/…', import.meta.url) points once the loader is inside bundle.js
    cpSync(join(app, 'node_modules/recurjs/dist/backend/wasm/build'), join(out, 'build'), { recursive: true });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.some((f) => f.includes('node_modules/recurjs/dist/')), 'the bundle does not contain the installed package');
    assert.deepEqual(inputs.filter((f) => f.startsWith('node:') || f.includes('(disabled)')), [], 'Node modules in the browser bundle');
    writeFileSync(join(out, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="./bundle.js"></script>');

    const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
    const servers: Server[] = [];
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'], timeout: 60_000 });
    try {
      for (const isolated of [true, false]) {
        const server = createServer((req, res) => {
          const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^\/+/, '') || 'index.html';
          const file = join(out, path);
          const headers: Record<string, string> = { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' };
          if (isolated) Object.assign(headers, { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
          if (!file.startsWith(out) || !existsSync(file)) return void res.writeHead(404).end();
          res.writeHead(200, headers).end(readFileSync(file));
        });
        servers.push(server);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const context = await browser.newContext();
        const page = await context.newPage();
        const problems: string[] = [];
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
        page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
        await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
        const handle = await page.waitForFunction(() => (globalThis as { __result?: unknown }).__result, null, { timeout: 90_000 });
        const r = (await handle.jsonValue()) as { ok: boolean; error?: string; threads: number; crossOriginIsolated: boolean; losses: number[] };
        await context.close();
        assert.ok(r.ok, `the page failed (${isolated ? 'isolated' : 'not isolated'}): ${r.error}\n${problems.join('\n')}`);
        assert.deepEqual(problems, []);
        t.diagnostic(`${isolated ? 'COOP/COEP' : 'no headers'}: ${r.threads} thread(s), loss ${r.losses[0]!.toFixed(3)} → ${r.losses.at(-1)!.toFixed(3)}`);
        assert.equal(r.crossOriginIsolated, isolated);
        if (isolated) assert.ok(r.threads >= 2, `threads ${r.threads} in a cross-origin-isolated page`);
        else assert.equal(r.threads, 1);
        assert.ok(r.losses.at(-1)! < r.losses[0]! * 0.7, `the loss did not fall: ${r.losses.join(', ')}`);
      }
    } finally {
      await browser.close();
      for (const s of servers) s.close();
    }
  });

  test('publint and @arethetypeswrong/cli (ESM-only profile) find no problems', () => {
    // publint on the installed package: exactly the tarball's files (--pack false: lint as they are)
    const p = run(process.execPath, [join(root, 'node_modules/publint/src/cli.js'), join(app, 'node_modules/recurjs'), '--pack', 'false', '--strict'], app);
    assert.equal(p.status, 0, `publint:\n${p.stdout}${p.stderr}`);
    assert.match(p.stdout, /All good/);
    // the package is ESM only: the esm-only profile leaves out node10 (no exports support) and
    // node16-from-CJS (a CommonJS TypeScript project must use import()), which cannot apply to it
    const a = run(join(root, 'node_modules/.bin/attw'), [tarball, '--profile', 'esm-only', '--format', 'json'], app);
    const report = JSON.parse(a.stdout) as { analysis: { problems: { kind: string; entrypoint: string; resolutionKind?: string }[] } };
    const problems = report.analysis.problems.filter((x) => x.resolutionKind !== 'node10' && x.resolutionKind !== 'node16-cjs');
    assert.deepEqual(problems, [], 'attw problems outside the ESM-only profile');
    assert.equal(a.status, 0, `attw:\n${a.stderr}`);
    const entries = Object.keys(report.analysis as unknown as { entrypoints: object }).length;
    assert.ok(entries > 0);
  });

  const webIndex = join(root, 'dist/web/index.html');
  test('the packed playground: dist/web whole in the tarball, served by the installed recur playground', {
    skip: existsSync(webIndex) ? false : 'dist/web is not built (npm run build:web makes it; prepack does before publishing)',
  }, async () => {
    const files = new Set(packed!.files.map((f) => f.path));
    const local = walkFiles(join(root, 'dist/web')).map((f) => relative(root, f).split(sep).join('/'));
    assert.ok(local.includes('dist/web/index.html'));
    assert.deepEqual(local.filter((f) => !files.has(f)), [], 'files of dist/web missing from the tarball');
    assert.ok(!existsSync(join(app, 'node_modules/vite')), 'vite was installed into the consumer');
    const { child, url, exit, output } = await startServer(['playground', '--port', '0'], /^recur playground: (http:\/\/\S+)$/m);
    try {
      assert.match(output().out, /site: .*node_modules\/recurjs\/dist\/web/);
      const page = await fetch(url);
      assert.equal(page.status, 200);
      assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
      assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
      assert.equal(await page.text(), readFileSync(webIndex, 'utf8'));
      const wasm = local.find((f) => f.endsWith('.wasm'));
      if (wasm) assert.equal((await fetch(new URL(wasm.slice('dist/web/'.length), url))).headers.get('content-type'), 'application/wasm');
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exit, 0, output().err);
  });

  test('npx recur serve and recur score from a fresh install, no Redis; recur worker names the optional bullmq', async () => {
    const model = join(app, 'demo.safetensors');
    ok(run('npx', ['--no', '--', 'recur', 'demo', '--steps', '2', '--hidden', '16', '--sample-length', '5', '--out', model], app), 'npx recur demo');
    // scoring in this process (the embedded queue): one output line per input line
    writeFileSync(join(app, 'in.jsonl'), '"Call me"\n"Ishmael"\n');
    ok(run('npx', ['--no', '--', 'recur', 'score', model, '--input', join(app, 'in.jsonl'), '--out', join(app, 'out.jsonl'), '--quiet'], app), 'npx recur score');
    assert.equal(readFileSync(join(app, 'out.jsonl'), 'utf8').trim().split('\n').length, 2);
    // Redis scoring needs bullmq, an optional peer dependency the consumer did not install
    assert.ok(!existsSync(join(app, 'node_modules/bullmq')), 'bullmq was installed into the consumer');
    const w = run('npx', ['--no', '--', 'recur', 'worker', model, '--redis', 'redis://127.0.0.1:9'], app);
    assert.notEqual(w.status, 0);
    assert.match(w.stderr, /needs the 'bullmq' package.*npm install bullmq/);
    // serving: a stream steps over HTTP
    const { child, url, exit, output } = await startServer(['serve', model, '--port', '0'], /recur serve: (http:\/\/\S+)/);
    try {
      const post = (path: string, body: unknown): Promise<Response> =>
        fetch(new URL(path, url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const created = await post('/streams', { id: 'u1' });
      assert.equal(created.status, 201, await created.clone().text());
      const step = await post('/streams/u1/step', { input: 'Call me' });
      assert.equal(step.status, 200, await step.clone().text());
      assert.equal(((await step.json()) as { version: number }).version, 1);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exit, 0, output().err);
  });

  test('the models that ship work right after install: npx recur predict classify-names, npx recur g2p', () => {
    assert.equal(ok(run('npx', ['--no', '--', 'recur', 'predict', 'classify-names', 'Alice'], app), 'npx recur predict classify-names'), 'female\n');
    assert.match(ok(run('npx', ['--no', '--', 'recur', 'g2p', 'phoenix'], app), 'npx recur g2p'), /^PHOENIX {2}[A-Z]+( [A-Z]+)*\n$/);
  });

  test('npx recur --help and node -e "import(\'recurjs\')" in the consumer, without tsx', () => {
    const help = ok(run('npx', ['--no', '--', 'recur', '--help'], app), 'npx recur --help');
    assert.match(help, /^recur: /);
    assert.match(help, /Usage:/);
    const imp = ok(run(process.execPath, ['-e', "import('recurjs').then((m) => console.log(m.VERSION, typeof m.Trainer))"], app), "node -e import('recurjs')");
    assert.equal(imp.trim(), `${pkg.version} function`);
  });
});

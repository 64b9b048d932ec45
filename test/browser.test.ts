/**
 * The wasm backend in a browser: headless Chromium (Debian's `chromium` package, driven by
 * playwright-core) loads a page whose script — test/browser/entry.ts, bundled here by esbuild as a
 * browser ESM bundle of the public entry (src/index.ts) — creates the wasm backend, runs small LSTM
 * and GRU layers forward and backward on it and on the js reference backend, and reports the
 * differences, the thread count and the build variant.
 *
 * A node:http server on 127.0.0.1 serves the page, the bundle and the built kernel modules
 * (src/backend/wasm/build/, at build/ beside the bundle: where the loader's
 * `new URL('./build/…', import.meta.url)` points once bundled), twice:
 *   - cross-origin isolated (COOP same-origin + COEP require-corp): SharedArrayBuffer exists, and
 *     the backend must start with the 2 threads asked for (one Web Worker; threadMinWork 0, so
 *     every GEMM and recurrent step is split across both);
 *   - without those headers: no SharedArrayBuffer, so the loader's unshared-memory fallback must
 *     load the module single-threaded (no worker).
 * In both: no page error, console error or failed request; wasm vs js within the float32 tolerance
 * of the Node wasm tests (2e-5 relative to 1 + |value|).
 *
 * Needs /usr/bin/chromium (`apt-get install chromium`, as .ci/run does); without it this test
 * fails rather than skips.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium, type Browser } from 'playwright-core';

import type { BrowserResult } from './browser/entry.ts';
import { bundleForBrowser } from './helpers/browser-bundle.ts';

const CHROMIUM = '/usr/bin/chromium';
const TOL = 2e-5;

const root = fileURLToPath(new URL('..', import.meta.url));
const wasmDir = join(root, 'src/backend/wasm/build');
execFileSync(process.execPath, [join(root, 'scripts/build-wasm.mjs'), '--if-stale'], { stdio: 'pipe' });

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>recur wasm backend</title></head>
<body><script type="module" src="./bundle.js"></script></body></html>
`;

interface Served {
  url: string;
  /** Paths requested, in order. */
  requests: string[];
  server: Server;
}

/** Serve the page, the bundle's files and the kernel modules; `isolated` adds the COOP/COEP headers. */
async function serve(bundleDir: string, isolated: boolean): Promise<Served> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    requests.push(path);
    const headers: Record<string, string> = { 'Cache-Control': 'no-store' };
    if (isolated) {
      headers['Cross-Origin-Opener-Policy'] = 'same-origin';
      headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
    }
    let body: string | Buffer | null = null;
    if (path === '/' || path === '/index.html') {
      headers['Content-Type'] = 'text/html; charset=utf-8';
      body = PAGE;
    } else if (/^\/[\w.-]+\.js$/.test(path) && existsSync(join(bundleDir, basename(path)))) {
      headers['Content-Type'] = 'text/javascript; charset=utf-8';
      body = readFileSync(join(bundleDir, basename(path)));
    } else if (/^\/build\/[\w.-]+\.wasm$/.test(path) && existsSync(join(wasmDir, basename(path)))) {
      headers['Content-Type'] = 'application/wasm';
      body = readFileSync(join(wasmDir, basename(path)));
    }
    if (body === null) {
      res.writeHead(404, headers).end('not found');
      return;
    }
    res.writeHead(200, headers).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, requests, server };
}

let tmp = '';
let browser: Browser | null = null;
const servers: Server[] = [];
let ready: Promise<Browser> | null = null;

/** Bundle the entry and start the browser, once (from the tests, so that a missing browser fails them). */
function setup(): Promise<Browser> {
  ready ??= (async () => {
    tmp = mkdtempSync(join(tmpdir(), 'recur-browser-'));
    await bundleForBrowser(new URL('./browser/entry.ts', import.meta.url), join(tmp, 'dist'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // playwright-core gives each launch a fresh temporary profile (user-data dir) and removes it on close
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
      timeout: 60_000,
    });
    return browser;
  })();
  return ready;
}

after(async () => {
  await browser?.close();
  for (const s of servers) s.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Load the page from a fresh server and context; returns the entry's result and everything that went wrong. */
async function runPage(isolated: boolean, query: string): Promise<{ result: BrowserResult; problems: string[]; requests: string[]; workers: number }> {
  if (!existsSync(CHROMIUM)) {
    assert.fail(`${CHROMIUM} not found: this test needs Debian's chromium package (apt-get install -y chromium; .ci/run installs it)`);
  }
  const browser = await setup();
  const s = await serve(join(tmp, 'dist'), isolated);
  servers.push(s.server);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText ?? '?'})`));
    page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
    let workers = 0;
    page.on('worker', (w) => {
      workers++;
      w.on('console', (m) => { if (m.type() === 'error') problems.push(`worker console error: ${m.text()}`); });
    });
    const response = await page.goto(`${s.url}index.html${query}`, { waitUntil: 'load' });
    assert.equal(response?.status(), 200);
    const handle = await page.waitForFunction(() => (globalThis as { __recurResult?: unknown }).__recurResult, null, { timeout: 90_000 });
    const raw = (await handle.jsonValue()) as BrowserResult | { ok: false; error: string };
    if (!raw.ok) assert.fail(`the page failed: ${raw.error}${problems.length ? `\n${problems.join('\n')}` : ''}`);
    return { result: raw, problems, requests: s.requests, workers };
  } finally {
    await context.close();
  }
}

function checkCommon(result: BrowserResult, problems: string[], requests: string[], t: { diagnostic(m: string): void }): void {
  assert.deepEqual(problems, [], 'the page reported errors');
  assert.ok(requests.includes('/build/recur-simd.wasm'), `the kernel module was not fetched (requests: ${requests.join(', ')})`);
  assert.equal(result.support.simd, true);
  assert.equal(result.variant, 'simd');
  assert.equal(result.cases.length, 4);
  t.diagnostic(`threads ${result.threads}, variant ${result.variant}, wasmSupport ${JSON.stringify(result.support)}, ` +
    `crossOriginIsolated ${result.crossOriginIsolated}, ${result.ms} ms in the page`);
  for (const c of result.cases) {
    t.diagnostic(`${c.name}: ${c.values} values, max |diff| ${c.maxAbsDiff.toExponential(2)}, ` +
      `max |diff|/(1+|js|) ${c.maxRelErr.toExponential(2)} at ${c.worst}`);
    assert.ok(c.values > 0, `${c.name}: nothing compared`);
    assert.ok(c.maxRelErr <= TOL, `${c.name}: wasm vs js ${c.maxRelErr.toExponential(2)} at ${c.worst} > tol ${TOL}`);
  }
}

describe('wasm backend in headless Chromium', { timeout: 240_000 }, () => {
  test('cross-origin isolated: shared memory, 2 threads, matches js', async (t) => {
    const { result, problems, requests, workers } = await runPage(true, '?threads=2&minWork=0');
    checkCommon(result, problems, requests, t);
    assert.equal(workers, 1, 'Web Workers started');
    assert.equal(result.crossOriginIsolated, true);
    assert.equal(result.sharedArrayBuffer, true);
    assert.equal(result.support.threads, true);
    assert.equal(result.threads, 2);
  });

  test('not isolated: no SharedArrayBuffer, unshared-memory fallback on 1 thread, matches js', async (t) => {
    const { result, problems, requests, workers } = await runPage(false, '?threads=2');
    checkCommon(result, problems, requests, t);
    assert.equal(workers, 0, 'Web Workers started');
    assert.equal(result.crossOriginIsolated, false);
    assert.equal(result.sharedArrayBuffer, false);
    assert.equal(result.support.threads, false);
    assert.equal(result.threads, 1);
  });
});

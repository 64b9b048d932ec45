/**
 * The WebGPU backend in a browser: headless Chromium (Debian's `chromium` package, driven by
 * playwright-core) with `--enable-unsafe-webgpu`, which gives a SwiftShader adapter on a machine
 * without a GPU. The page (test/browser/webgpu-entry.ts, bundled here by esbuild) runs the shared
 * kernel suite and the PyTorch parity suite on the backend, with node:test and node:assert replaced
 * by small shims; every test it ran comes back here as a node:test test of the same name, so a
 * failure in the page is a failure here, with its message.
 *
 * Needs /usr/bin/chromium (.ci/run installs it); without it this test fails rather than skips.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Plugin } from 'esbuild';
import { chromium } from 'playwright-core';

import type { WebGpuPageResult } from './browser/webgpu-entry.ts';
import { bundleForBrowser } from './helpers/browser-bundle.ts';

const CHROMIUM = '/usr/bin/chromium';
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>recur webgpu backend</title></head>
<body><script type="module" src="./bundle.js"></script></body></html>
`;

/** node:test and node:assert/strict → the browser shims; other node: modules stay external. */
const shims: Plugin = {
  name: 'node-test-shims',
  setup(b) {
    const at = (f: string): string => fileURLToPath(new URL(`./browser/${f}`, import.meta.url));
    b.onResolve({ filter: /^node:test$/ }, () => ({ path: at('node-test-shim.ts') }));
    b.onResolve({ filter: /^node:assert\/strict$/ }, () => ({ path: at('assert-shim.ts') }));
  },
};

async function runInChromium(): Promise<{ result: WebGpuPageResult; problems: string[] }> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: this test needs Debian's chromium package (apt-get install -y chromium; .ci/run installs it)`);
  const tmp = mkdtempSync(join(tmpdir(), 'recur-webgpu-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  await bundleForBrowser(new URL('./browser/webgpu-entry.ts', import.meta.url), tmp, [shims]);
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/' || path === '/index.html') return res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
    const file = join(tmp, basename(path));
    if (/^\/[\w.-]+\.js$/.test(path) && existsSync(file)) return res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(readFileSync(file));
    res.writeHead(404).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => server.close());
  // a secure context (localhost) is what exposes navigator.gpu; no --disable-gpu, which turns WebGPU off
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'], timeout: 60_000 });
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/index.html`, { waitUntil: 'load' });
    const handle = await page.waitForFunction(() => (globalThis as { __recurWebGpu?: unknown }).__recurWebGpu, null, { timeout: 480_000, polling: 500 });
    return { result: (await handle.jsonValue()) as WebGpuPageResult, problems };
  } finally {
    await browser.close();
  }
}

const { result, problems } = await runInChromium();

describe('webgpu backend in headless Chromium', () => {
  test('the page loads the backend on a WebGPU adapter and reports no error', (t) => {
    if (!result.ok) assert.fail(`the page failed: ${result.error}${problems.length ? `\n${problems.join('\n')}` : ''}`);
    t.diagnostic(`adapter ${JSON.stringify(result.adapter)}; ${result.results.length} tests in ${result.ms} ms in the page`);
    assert.deepEqual(problems, [], 'the page reported errors');
    assert.ok(result.results.length > 80, `only ${result.results.length} tests ran in the page`);
  });
  if (!result.ok) return;
  for (const r of result.results) {
    test(r.name, { skip: r.status === 'skip' ? r.detail : false }, () => {
      if (r.status === 'fail') assert.fail(r.detail);
    });
  }
});

/**
 * `recur playground` and its static server (src/cli/playground.ts), on a temporary fixture site
 * (an index.html, a script, a minimal wasm module, a model file, a sub-folder, a dot-file and
 * symlinks into and out of the root):
 *   - servePlayground: the isolation headers on every response (and none with isolated: false),
 *     the content types, no-cache with ETag revalidation, HEAD, 404, 405, and every way out of the
 *     root refused (`..` raw and %-encoded, encoded separators, a symlink out, NUL bytes,
 *     malformed escapes, absolute-form targets), with raw request targets (a URL parser would
 *     normalise `..` before the server saw it);
 *   - the command, run as a user runs it (bin/recur.mjs): prints a URL that serves the fixture,
 *     exits 0 on SIGINT; a port in use and a missing site are one-line errors saying what to do;
 *     in a copy of the package without dist/web and without the playground's sources it refuses
 *     with the build instructions; in a copy with a web/ folder and Vite it builds the site first
 *     (and again only when a source is newer);
 *   - headless Chromium (Debian's chromium, driven by playwright-core, as in test/browser.test.ts):
 *     the page served by servePlayground is cross-origin isolated with SharedArrayBuffer, and
 *     instantiates the wasm module by streaming (which needs application/wasm); without isolation
 *     it is not isolated.
 * Needs dist/ (built here when stale) for the command.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { servePlayground, type Served } from '../src/cli/playground.ts';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(root, 'bin/recur.mjs');
const tmp = mkdtempSync(join(tmpdir(), 'recur-playground-'));
const site = join(tmp, 'site');
const SECRET = 'outside the root: never served';
// the user's shell, not npm's: `npm test` passes its settings down as npm_* variables
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
env.RECUR_DEBUG = '';

// A minimal valid WebAssembly module: the magic number and version 1, no sections.
const WASM = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fixture</title></head>
<body><script type="module" src="./app.js"></script></body></html>
`;
const APP = `
try {
  const { instance } = await WebAssembly.instantiateStreaming(fetch('./kernels/k.wasm'));
  globalThis.__result = { ok: true, crossOriginIsolated: globalThis.crossOriginIsolated === true,
    sharedArrayBuffer: typeof SharedArrayBuffer, wasm: instance instanceof WebAssembly.Instance };
} catch (e) {
  globalThis.__result = { ok: false, error: String(e) };
}
`;

const FILES: Record<string, string | Buffer> = {
  'index.html': PAGE,
  'app.js': APP,
  'lib.mjs': 'export const x = 1;\n',
  'style.css': 'body { margin: 0 }\n',
  'data.json': '{"a":1}\n',
  'kernels/k.wasm': WASM,
  'logo.svg': '<svg xmlns="http://www.w3.org/2000/svg"/>\n',
  'logo.png': Buffer.from([0x89, 0x50, 0x4e, 0x47]),
  'favicon.ico': Buffer.from([0, 0, 1, 0]),
  'model.safetensors': Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20]),
  'model.onnx': Buffer.from([0x08, 0x07]),
  'notes.txt': 'hello\n',
  'blob.bin': Buffer.from([1, 2, 3]),
  'sub/index.html': '<!doctype html><title>sub</title>\n',
  '.secret': SECRET,
};
const TYPES: Record<string, string> = {
  '/index.html': 'text/html; charset=utf-8',
  '/app.js': 'text/javascript; charset=utf-8',
  '/lib.mjs': 'text/javascript; charset=utf-8',
  '/style.css': 'text/css; charset=utf-8',
  '/data.json': 'application/json; charset=utf-8',
  '/kernels/k.wasm': 'application/wasm',
  '/logo.svg': 'image/svg+xml',
  '/logo.png': 'image/png',
  '/favicon.ico': 'image/x-icon',
  '/model.safetensors': 'application/octet-stream',
  '/model.onnx': 'application/octet-stream',
  '/notes.txt': 'text/plain; charset=utf-8',
  '/blob.bin': 'application/octet-stream',
};

interface Reply { status: number; headers: IncomingHttpHeaders; body: Buffer }

/** One request with `target` sent exactly as written (no URL normalisation on the way). */
function get(port: number, target: string, method = 'GET', headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: target, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const open: Served[] = [];
async function serve(isolated: boolean): Promise<Served> {
  const s = await servePlayground({ root: site, port: 0, isolated });
  open.push(s);
  return s;
}

before(() => {
  for (const [name, body] of Object.entries(FILES)) {
    mkdirSync(join(site, name, '..'), { recursive: true });
    writeFileSync(join(site, name), body);
  }
  writeFileSync(join(tmp, 'outside.txt'), SECRET);
  symlinkSync(join(tmp, 'outside.txt'), join(site, 'link-out.txt'));
  symlinkSync(tmp, join(site, 'dir-out'));
  symlinkSync(join(site, 'notes.txt'), join(site, 'link-in.txt'));
  // the command runs from dist/, as a user's `recur` does
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs'), '--if-stale'], { cwd: root, stdio: 'pipe' });
});

after(async () => {
  for (const s of open) await s.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('servePlayground', () => {
  test('serves the files with their content types, no-cache, and the isolation headers on every response', async () => {
    const s = await serve(true);
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    for (const [path, type] of Object.entries(TYPES)) {
      const r = await get(s.port, path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers['content-type'], type, path);
      assert.deepEqual(r.body, Buffer.from(FILES[path.slice(1)]!), path);
      assert.equal(r.headers['content-length'], String(r.body.length), path);
      assert.equal(r.headers['cache-control'], 'no-cache', path);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', path);
    }
    for (const path of ['/', '/app.js', '/kernels/k.wasm', '/missing.js', '/../outside.txt']) {
      const r = await get(s.port, path);
      assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin', path);
      assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp', path);
      assert.equal(r.headers['cross-origin-resource-policy'], 'same-origin', path);
    }
  });

  test('isolated: false sends no COOP/COEP/CORP headers', async () => {
    const s = await serve(false);
    for (const path of ['/', '/kernels/k.wasm', '/missing.js']) {
      const r = await get(s.port, path);
      for (const h of ['cross-origin-opener-policy', 'cross-origin-embedder-policy', 'cross-origin-resource-policy']) {
        assert.equal(r.headers[h], undefined, `${h} on ${path}`);
      }
      assert.equal(r.headers['cache-control'], 'no-cache');
    }
    assert.equal((await get(s.port, '/kernels/k.wasm')).headers['content-type'], 'application/wasm');
  });

  test('folders: / and /sub/ serve their index.html, /sub redirects to /sub/ (query kept)', async () => {
    const s = await serve(true);
    const index = await get(s.port, '/');
    assert.equal(index.status, 200);
    assert.equal(index.body.toString(), PAGE);
    assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal((await get(s.port, '/?x=1')).body.toString(), PAGE);
    assert.equal((await get(s.port, '/sub/')).body.toString(), FILES['sub/index.html']);
    const redirect = await get(s.port, '/sub?a=b');
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, '/sub/?a=b');
    assert.equal((await get(s.port, '/kernels/')).status, 404, 'a folder without index.html');
    // the raw path is not echoed into Location: '//sub' would redirect to another host
    const doubled = await get(s.port, '//sub');
    assert.equal(doubled.status, 301);
    assert.equal(doubled.headers.location, '/sub/');
  });

  test('HEAD: the headers of GET, no body; ETag revalidation answers 304', async () => {
    const s = await serve(true);
    const head = await get(s.port, '/kernels/k.wasm', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-type'], 'application/wasm');
    assert.equal(head.headers['content-length'], String(WASM.length));
    assert.equal(head.body.length, 0);
    const full = await get(s.port, '/kernels/k.wasm');
    assert.ok(full.headers.etag, 'an ETag');
    assert.equal(head.headers.etag, full.headers.etag);
    const again = await get(s.port, '/kernels/k.wasm', 'GET', { 'If-None-Match': full.headers.etag! });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    assert.equal(again.headers['cross-origin-embedder-policy'], 'require-corp');
    assert.equal((await get(s.port, '/kernels/k.wasm', 'GET', { 'If-None-Match': 'W/"other"' })).status, 200);
    assert.equal((await get(s.port, '/missing.html', 'HEAD')).status, 404);
  });

  test('404 for what is not there; 405 (with Allow) for methods other than GET and HEAD', async () => {
    const s = await serve(true);
    for (const path of ['/missing.html', '/kernels/missing.wasm', '/index.html/x']) {
      assert.equal((await get(s.port, path)).status, 404, path);
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await get(s.port, '/index.html', method);
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD', method);
      assert.ok(!r.body.toString().includes('<title>'), `${method} returned the file`);
    }
  });

  test('nothing outside the root: .., encoded .. and separators, symlinks out, dot-files, NUL, bad escapes, absolute targets', async () => {
    const s = await serve(true);
    const refused: [string, number][] = [
      ['/../outside.txt', 404],
      ['/sub/../../outside.txt', 404],
      ['/%2e%2e/outside.txt', 404],
      ['/%2E%2E/%2e%2e/outside.txt', 404],
      ['/sub/..%2f..%2foutside.txt', 404],
      ['/..%5coutside.txt', 404],
      ['/sub%2f..%2f..%2foutside.txt', 404],
      [`/${encodeURIComponent(join(tmp, 'outside.txt'))}`, 404],
      [`/${join(tmp, 'outside.txt')}`, 404],
      ['/link-out.txt', 404],
      ['/dir-out/outside.txt', 404],
      ['/dir-out/', 404],
      ['/.secret', 404],
      ['/%2esecret', 404],
      ['/index.html%00.js', 400],
      ['/%00', 400],
      ['/%zz', 400],
      ['/%E0%A4%A', 400],
      [`http://127.0.0.1:${s.port}/../outside.txt`, 400],
      ['*', 400],
    ];
    for (const [target, status] of refused) {
      const r = await get(s.port, target);
      assert.equal(r.status, status, `${target}: ${r.status} ${r.body.toString().slice(0, 60)}`);
      assert.ok(!r.body.toString().includes(SECRET), `${target} leaked the file outside the root`);
    }
    // a symlink that stays inside the root is an ordinary file
    const inside = await get(s.port, '/link-in.txt');
    assert.equal(inside.status, 200);
    assert.equal(inside.body.toString(), FILES['notes.txt']);
    assert.equal(inside.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal((await get(s.port, '/sub/%2e%2e/index.html')).status, 404, 'an encoded .. inside the root is refused too');
  });

  test('bad options and a port in use are errors that name the problem', async () => {
    await assert.rejects(servePlayground({ root: site, port: 70000 }), /option 'port' must be an integer in 0\.\.65535, got 70000/);
    await assert.rejects(servePlayground({ root: site, colour: 'red' } as never), /unknown option 'colour' \(known: root, port, host, isolated\)/);
    await assert.rejects(servePlayground({ root: join(tmp, 'nope') }), /the root folder '.*nope' does not exist/);
    await assert.rejects(servePlayground({ root: join(site, 'notes.txt'), port: 0 }), /is not a folder/);
    const s = await serve(true);
    await assert.rejects(servePlayground({ root: site, port: s.port }), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
  });

  test('close() stops listening, with a keep-alive connection open', async () => {
    const s = await servePlayground({ root: site, port: 0 });
    const keepAlive = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: s.port, path: '/', headers: { Connection: 'keep-alive' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(keepAlive, 200);
    await s.close();
    await assert.rejects(get(s.port, '/'), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
  });
});

interface Started { child: ChildProcessWithoutNullStreams; url: string; out: () => string; err: () => string; exit: Promise<number | null> }

/** Start `recur playground ARGS` and wait for the URL it prints. */
async function startCommand(bin: string, args: string[], timeout = 60_000): Promise<Started> {
  const child = spawn(process.execPath, [bin, 'playground', ...args], { cwd: tmp, env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL within ${timeout} ms:\n${stdout}\n${stderr}`)), timeout);
    const check = (): void => {
      const m = /^recur playground: (http:\/\/\S+)$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout.on('data', check);
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before printing a URL:\n${stdout}\n${stderr}`));
    });
  });
  return { child, url, out: () => stdout, err: () => stderr, exit };
}

function recur(bin: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: tmp, env, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * A copy of the package as a user's install lays it out (package.json, bin/, dist/ without
 * dist/web), with this repository's node_modules linked in; `web` adds a playground source
 * folder (a clone).
 */
function packageCopy(name: string, web: boolean): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  pkg.scripts = web ? { 'build:web': 'vite build --config web/vite.config.ts' } : {};
  writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  cpSync(join(root, 'bin'), join(dir, 'bin'), { recursive: true });
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true, filter: (p) => !p.startsWith(join(root, 'dist/web')) });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  if (web) {
    mkdirSync(join(dir, 'web'));
    writeFileSync(join(dir, 'web/index.html'), '<!doctype html><html><head><meta charset="utf-8"><title>recur playground</title></head>' +
      '<body><script type="module" src="./main.js"></script></body></html>\n');
    writeFileSync(join(dir, 'web/main.js'), "document.body.dataset.built = 'yes';\n");
    writeFileSync(join(dir, 'web/vite.config.ts'), `const here = new URL('.', import.meta.url).pathname;
export default { root: here, base: './', cacheDir: here + '../.vite-cache', logLevel: 'warn' as const,
  build: { outDir: here + '../dist/web', emptyOutDir: true } };
`);
  }
  return dir;
}

describe('recur playground', { timeout: 180_000 }, () => {
  test('--help, recur help playground, and the command in the main help', () => {
    const h = recur(BIN, ['playground', '--help']);
    assert.equal(h.code, 0, h.stderr);
    for (const flag of ['--port', '--host', '--no-isolation', '--root']) assert.ok(h.stdout.includes(flag), `help lists ${flag}`);
    assert.equal(recur(BIN, ['help', 'playground']).stdout, h.stdout);
    assert.match(recur(BIN, ['--help']).stdout, /^ {2}playground\b/m);
  });

  test('--port 0 --root FIXTURE: prints a URL that serves the fixture with the headers; SIGINT stops it with exit 0', async () => {
    const s = await startCommand(BIN, ['--port', '0', '--root', site]);
    assert.match(s.out(), /threads: on/);
    const page = await fetch(s.url);
    assert.equal(page.status, 200);
    assert.equal(await page.text(), PAGE);
    assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
    const wasm = await fetch(new URL('kernels/k.wasm', s.url));
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    s.child.kill('SIGINT');
    assert.equal(await s.exit, 0, s.err());
    assert.match(s.out(), /stopped/);
    assert.equal(s.err(), '');
    await assert.rejects(fetch(s.url), 'still serving after SIGINT');
  });

  test('--no-isolation: no COOP/COEP, and the output says threads are off', async () => {
    const s = await startCommand(BIN, ['--port', '0', '--root', site, '--no-isolation']);
    assert.match(s.out(), /threads: off/);
    const page = await fetch(s.url);
    assert.equal(page.headers.get('cross-origin-opener-policy'), null);
    s.child.kill('SIGTERM');
    assert.equal(await s.exit, 0, s.err());
  });

  test('a port in use, a bad port, a --root without a site: clear errors', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as AddressInfo).port;
      const r = recur(BIN, ['playground', '--port', String(port), '--root', site]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `recur playground: port ${port} on 127.0.0.1 is in use; choose another with --port N (--port 0 picks a free one)\n`);
    } finally {
      blocker.close();
    }
    const bad = recur(BIN, ['playground', '--port', '70000']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--port must be an integer in 0\.\.65535, got '70000'/);
    const noSite = recur(BIN, ['playground', '--root', join(site, 'kernels')]);
    assert.equal(noSite.code, 1);
    assert.match(noSite.stderr, /^recur playground: --root: no index\.html in '.*kernels'/);
    const noDir = recur(BIN, ['playground', '--root', join(tmp, 'nope')]);
    assert.equal(noDir.code, 1);
    assert.match(noDir.stderr, /--root: no folder/);
  });

  test('an installed package without dist/web: exit 1 with how to build it', () => {
    const pkg = packageCopy('installed', false);
    const r = recur(join(pkg, 'bin/recur.mjs'), ['playground', '--port', '0']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^recur playground: the built playground is missing \(no .*dist\/web\/index\.html\)\. .*'npm run build:web'.*--root DIR\n$/);
  });

  test('a clone with web/ and Vite: builds the site when missing or stale, then serves it', async () => {
    const pkg = packageCopy('clone', true);
    const bin = join(pkg, 'bin/recur.mjs');
    const first = await startCommand(bin, ['--port', '0'], 120_000);
    assert.match(first.err(), /^Building the playground \(npm run build:web\)/);
    assert.ok(existsSync(join(pkg, 'dist/web/index.html')), 'the site was built into dist/web');
    const page = await (await fetch(first.url)).text();
    assert.match(page, /<title>recur playground<\/title>/);
    first.child.kill('SIGINT');
    assert.equal(await first.exit, 0, first.err());

    // built and fresh: served as it is
    const second = await startCommand(bin, ['--port', '0']);
    second.child.kill('SIGINT');
    assert.equal(await second.exit, 0);
    assert.doesNotMatch(second.err(), /uilding/);

    // a source newer than the site: rebuilt
    const later = new Date(Date.now() + 5_000);
    utimesSync(join(pkg, 'web/main.js'), later, later);
    const third = await startCommand(bin, ['--port', '0'], 120_000);
    third.child.kill('SIGINT');
    assert.equal(await third.exit, 0);
    assert.match(third.err(), /^Rebuilding the playground/);
  });
});

describe('in headless Chromium', { timeout: 120_000 }, () => {
  test('isolated: crossOriginIsolated and SharedArrayBuffer, wasm instantiated by streaming; not isolated: neither', async (t) => {
    if (!existsSync(CHROMIUM)) assert.fail(`${CHROMIUM} not found: this test needs Debian's chromium package (apt-get install -y chromium; .ci/run installs it)`);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60_000,
    });
    try {
      for (const isolated of [true, false]) {
        const s = await serve(isolated);
        const context = await browser.newContext();
        const page = await context.newPage();
        const problems: string[] = [];
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
        page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
        page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
        const response = await page.goto(s.url);
        assert.equal(response?.status(), 200);
        const handle = await page.waitForFunction(() => (globalThis as { __result?: unknown }).__result, null, { timeout: 30_000 });
        const r = (await handle.jsonValue()) as { ok: boolean; error?: string; crossOriginIsolated: boolean; sharedArrayBuffer: string; wasm: boolean };
        await context.close();
        t.diagnostic(`${isolated ? 'isolated' : 'not isolated'}: ${JSON.stringify(r)}`);
        assert.ok(r.ok, `the page failed: ${r.error}`);
        assert.deepEqual(problems, []);
        assert.equal(r.wasm, true);
        assert.equal(r.crossOriginIsolated, isolated);
        assert.equal(r.sharedArrayBuffer, isolated ? 'function' : 'undefined');
      }
    } finally {
      await browser.close();
    }
  });
});

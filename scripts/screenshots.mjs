/**
 * Refresh docs/playground.png, the README's picture of the playground: build the site, serve it with
 * Vite's preview server (COOP/COEP headers from web/vite.config.ts), train the char-LM for a while
 * in headless Chromium, look inside it, and photograph the top of the page at 1280×800.
 *
 *   node scripts/screenshots.mjs          (needs dist/ built: npm run build; and /usr/bin/chromium)
 *
 * test/playground.test.ts saves one screenshot per section into tmp/playground/ on every run.
 *
 * On the way it measures training throughput of that char-LM (H 128, batch 32 × 64 characters,
 * Adam) over steps 50–300 in the page, and of the same model, data and steps in Node.js on the wasm
 * backend with as many threads as the page got (both evaluate every 50 steps; the page also samples
 * 240 characters every 1.5 s while it trains, which Node does not): the figures the README quotes.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { build, preview } from 'vite';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('..', import.meta.url));
const configFile = `${root}web/vite.config.ts`;
const STEPS = 300;
const FROM = 50;
const CHARS_PER_STEP = 32 * 64;

execFileSync(process.execPath, [`${root}scripts/build.mjs`, '--if-stale'], { cwd: root, stdio: 'inherit' });
execFileSync(process.execPath, [`${root}web/make-data.mjs`], { cwd: root, stdio: 'inherit' });
await build({ configFile, logLevel: 'warn' });
const server = await preview({ configFile, preview: { port: 0, host: '127.0.0.1' }, logLevel: 'silent' });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  await page.goto(server.resolvedUrls.local[0]);
  await page.waitForFunction(() => /\d thread/.test(document.querySelector('[data-testid="backend-info"]')?.textContent ?? ''));
  await page.click('[data-testid="charlm-start"]');
  await page.waitForFunction((n) => window.__playground.sections.charlm.steps.length >= n, STEPS, { timeout: 300_000, polling: 500 });
  const { times, backend } = await page.evaluate(() => ({ times: window.__playground.sections.charlm.times, backend: window.__playground.backend }));
  const pageRate = ((STEPS - FROM) * CHARS_PER_STEP) / ((times[STEPS - 1] - times[FROM - 1]) / 1000);
  await page.click('[data-testid="charlm-pause"]');
  await page.waitForFunction(() => !window.__playground.sections.charlm.running);
  await page.click('[data-testid="charlm-sample-now"]');
  await page.waitForTimeout(500);
  const out = `${root}docs/playground.png`;
  await page.screenshot({ path: out, clip: { x: 0, y: 0, width: 1280, height: 800 } });
  console.log(`wrote docs/playground.png (char-LM after ${STEPS} steps)`);
  console.log(`char-LM H 128, steps ${FROM}–${STEPS}: page ${Math.round(pageRate)} characters/s (wasm, ${backend.threads} threads); node ${Math.round(await nodeRate(backend.threads))} characters/s (wasm, ${backend.threads} threads)`);
} finally {
  await browser.close();
  await server.close();
}

/** The page's char-LM (same options, data and optimizer) trained in Node.js: characters per second over steps FROM–STEPS. */
async function nodeRate(threads) {
  const { setBackend, Trainer } = await import('recurjs');
  const { loadWasmBackend } = await import('recurjs/wasm');
  const { buildLM } = await import('recurjs/models');
  const data = JSON.parse(readFileSync(`${root}web/public/data/moby.json`, 'utf8'));
  const be = await loadWasmBackend({ threads });
  setBackend('wasm');
  try {
    const built = buildLM({ embeddingDim: 32, hiddenSize: 128, numLayers: 1, seqLen: 64, batchSize: 32, stepsPerEpoch: 100, evalBatchSize: 16, seed: 1 }, data);
    let t0 = 0, t1 = 0;
    await new Trainer(built.task, {
      optimizer: 'adam', lr: 0.01, clipNorm: 5, maxSteps: STEPS, evalEvery: 50, log: () => {},
      callbacks: [{ onStepEnd: (i) => { if (i.step === FROM) t0 = performance.now(); if (i.step === STEPS) t1 = performance.now(); } }],
    }).fit(built.train, built.val);
    return ((STEPS - FROM) * CHARS_PER_STEP) / ((t1 - t0) / 1000);
  } finally {
    be.dispose();
  }
}

/**
 * The browser playground (web/), built and served as users get it: `vite build` of web/ into
 * dist/web/, served by Vite's own preview server with the config's COOP/COEP headers (and once
 * without them), driven in headless Chromium (Debian's `chromium`, through playwright-core).
 *
 * Cross-origin isolated:
 *   - the page loads with no page error, console error or failed request, and asks nothing of any
 *     origin but its own; `crossOriginIsolated` is true and the backend reports more than one thread
 *     (on a machine with at least two cores);
 *   - each topology section trains for a fixed number of steps and its training loss falls by the
 *     margin stated in TOPOLOGIES; each then shows its output (a sample, probabilities, names,
 *     captions);
 *   - the hidden-state view and the vanishing-gradient measurement draw;
 *   - a model file written by `recur train classify-names` in this run opens in the page and gives
 *     the same probabilities (to 1e-5) as recur in Node on the same input; a file that is not a
 *     model gets the CLI's error text; the classifier downloaded from the page works in `recur predict`
 *     and answers what the page answered.
 * Not isolated: no SharedArrayBuffer, one thread, and the char-LM still trains (a GRU, on text
 * pasted into the page; its gates show, and its downloaded file works in `recur predict`); at phone
 * width the page does not scroll sideways.
 * Screenshots of every section go to tmp/playground/ (git-ignored); scripts/screenshots.mjs
 * refreshes the README's docs/playground.png.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build, preview, type InlineConfig, type PreviewServer } from 'vite';
import { chromium, type Browser, type Page } from 'playwright-core';

import viteConfig from '../web/vite.config.ts';
import { decodeModel, setBackend } from '../src/index.ts';
import { loadWasmBackend } from '../src/backend/wasm/index.ts';
import { getTaskSpec } from '../src/models/registry.ts';
import { classifierProbabilities } from '../src/models/inspect.ts';
import type { ClassificationTask } from '../src/models/classifier.ts';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('..', import.meta.url));
const shots = join(root, 'tmp/playground');
const configFile = join(root, 'web/vite.config.ts');

/** Steps each topology trains, and how far its training loss must fall (first step's loss − mean of the last 10). */
const TOPOLOGIES = [
  { kind: 'charlm', steps: 60, margin: 1.0 },
  { kind: 'names', steps: 100, margin: 0.1 },
  { kind: 'namegen', steps: 60, margin: 1.0 },
  { kind: 'caption', steps: 40, margin: 1.0 },
] as const;

let tmp = '';
let browser: Browser | null = null;
const servers: PreviewServer[] = [];
/** `recur train classify-names` started in before(), awaited where its file is needed. */
let cliModel: Promise<string>;

function recur(args: string[]): string {
  return execFileSync(process.execPath, [join(root, 'bin/recur.mjs'), ...args], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'recur-playground-'));
  mkdirSync(shots, { recursive: true });
  const runDir = join(tmp, 'cli-run');
  cliModel = new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(root, 'bin/recur.mjs'), 'train', 'classify-names', '--max-steps', '20', '--run-dir', runDir], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => (code === 0 ? resolve(join(runDir, 'model.safetensors')) : reject(new Error(`recur train failed (${code}): ${err}`))));
  });
  // `npm test` builds the site once before the tests (npm run build:web), so that no test rebuilds
  // dist/web while another packs or serves it; run alone, this file builds it when it is missing:
  // the library (dist/), the data samples, then the site, as `npm run build:web` does
  if (!existsSync(join(root, 'dist/web/index.html'))) {
    execFileSync(process.execPath, [join(root, 'scripts/build.mjs'), '--if-stale'], { cwd: root, stdio: 'pipe' });
    execFileSync(process.execPath, [join(root, 'web/make-data.mjs')], { cwd: root, stdio: 'pipe' });
    await build({ configFile, logLevel: 'silent' });
  }
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: this test needs Debian's chromium package (apt-get install -y chromium)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
});

after(async () => {
  await browser?.close();
  for (const s of servers) await s.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The built site on a fresh preview server: with the config's headers, or with none. */
async function serve(isolated: boolean): Promise<string> {
  const config: InlineConfig = isolated
    ? { configFile, preview: { port: 0, host: '127.0.0.1' }, logLevel: 'silent' }
    : { ...viteConfig, configFile: false, preview: { ...viteConfig.preview, headers: {}, port: 0, host: '127.0.0.1' }, logLevel: 'silent' };
  const s = await preview(config);
  servers.push(s);
  return s.resolvedUrls!.local[0];
}

interface Opened {
  page: Page;
  problems: string[];
  foreign: string[];
  origin: string;
}

async function open(url: string, viewport = { width: 1280, height: 800 }, on: Browser = browser!): Promise<Opened> {
  const context = await on.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  const problems: string[] = [];
  const foreign: string[] = [];
  const origin = new URL(url).origin;
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText ?? '?'})`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  page.on('request', (r) => { const u = r.url(); if (!u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:')) foreign.push(u); });
  page.on('worker', (w) => w.on('console', (m) => { if (m.type() === 'error') problems.push(`worker console error: ${m.text()}`); }));
  const res = await page.goto(url, { waitUntil: 'load' });
  assert.equal(res?.status(), 200);
  assert.equal(await page.title(), 'recur playground');
  await page.waitForFunction(() => /\d thread/.test(document.querySelector('[data-testid="backend-info"]')?.textContent ?? ''), null, { timeout: 30_000 });
  return { page, problems, foreign, origin };
}

type Section = { steps: number[]; loss: number[]; evals: { step: number; loss: number }[]; running: boolean; output: unknown };
const section = (page: Page, kind: string): Promise<Section> => page.evaluate((k) => (window as unknown as { __playground: { sections: Record<string, Section> } }).__playground.sections[k], kind);

/** Start a section, let it train `steps` steps, pause it; its history. */
async function train(page: Page, kind: string, steps: number): Promise<Section> {
  await page.click(`[data-testid="${kind}-start"]`);
  await page.waitForFunction(([k, n]) => (window as unknown as { __playground: { sections: Record<string, Section> } }).__playground.sections[k as string].steps.length >= (n as number), [kind, steps] as const, { timeout: 60_000, polling: 100 });
  await page.click(`[data-testid="${kind}-pause"]`);
  await page.waitForFunction((k) => !(window as unknown as { __playground: { sections: Record<string, Section> } }).__playground.sections[k].running, kind, { timeout: 30_000 });
  return section(page, kind);
}

function fall(s: Section): { first: number; last: number } {
  const tail = s.loss.slice(-10);
  return { first: s.loss[0], last: tail.reduce((a, b) => a + b, 0) / tail.length };
}

describe('playground in headless Chromium', { timeout: 170_000 }, () => {
  test('cross-origin isolated: threads, every topology learns, files round-trip with the CLI', async (t) => {
    const url = await serve(true);
    const { page, problems, foreign } = await open(url);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    const info = (await page.textContent('[data-testid="backend-info"]'))!;
    const threads = Number(/(\d+) thread/.exec(info)![1]);
    t.diagnostic(`backend: ${info}`);
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    if (cores >= 2) assert.ok(threads > 1, `isolated page on ${cores} cores uses ${threads} thread(s)`);
    assert.match(info, /cross-origin isolated/);

    for (const { kind, steps, margin } of TOPOLOGIES) {
      const s = await train(page, kind, steps);
      const { first, last } = fall(s);
      t.diagnostic(`${kind}: ${s.steps.length} steps, loss ${first.toFixed(3)} → ${last.toFixed(3)} (mean of the last 10)`);
      assert.ok(first - last >= margin, `${kind}: loss fell by ${(first - last).toFixed(3)} < ${margin}`);
      await page.locator(`#${kind}`).screenshot({ path: join(shots, `${kind}.png`) });
    }

    // what each section shows
    const sample = (await page.textContent('[data-testid="charlm-sample"]'))!;
    assert.ok(sample.length > 50, `char-LM sample: ${JSON.stringify(sample)}`);
    await page.fill('[data-testid="names-input"]', 'Margaret');
    await page.waitForFunction(() => ((window as unknown as { __playground: { sections: Record<string, Section> } }).__playground.sections.names.output as { text?: string } | null)?.text === 'Margaret');
    const probs = ((await section(page, 'names')).output as { probs: { label: string; p: number }[] }).probs;
    assert.deepEqual(probs.map((p) => p.label), ['female', 'male']);
    assert.ok(Math.abs(probs[0].p + probs[1].p - 1) < 1e-5);
    await page.click('[data-testid="namegen-go"]');
    await page.waitForFunction(() => ((window as unknown as { __playground: { sections: Record<string, Section> } }).__playground.sections.namegen.output as string[] | null)?.length === 12);
    const generated = (await section(page, 'namegen')).output as string[];
    assert.ok(generated.some((n) => n.length >= 2), `generated names: ${generated.join(', ')}`);
    const captions = (await section(page, 'caption')).output as { truth: string; predicted: string }[];
    assert.equal(captions.length, 6);
    assert.ok(captions.every((c) => /^a /.test(c.predicted)), `captions: ${JSON.stringify(captions)}`);

    // inside the network: the heatmaps draw one column per character
    await page.click('[data-testid="inside-go"]');
    await page.waitForFunction(() => (document.querySelector('[data-testid="inside-hidden"]') as HTMLCanvasElement).width > 0);
    await page.waitForFunction(() => (window as unknown as { __playground: { sections: Record<string, Section> } }).__playground.sections.inside.output !== null);
    assert.deepEqual(((await section(page, 'inside')).output as { gates: string[] }).gates, ['input', 'forget', 'output']);
    await page.locator('#inside').screenshot({ path: join(shots, 'inside.png') });

    // vanishing gradients, as `recur diagnose` measures them (a short run)
    await page.fill('#diag-lag', '30');
    await page.fill('#diag-steps', '10');
    await page.click('[data-testid="diag-go"]');
    await page.waitForFunction(() => (window as unknown as { __playground: { sections: Record<string, Section> } }).__playground.sections.gradients.output !== null, null, { timeout: 60_000 });
    const diag = (await section(page, 'gradients')).output as { cell: string; ratioInit: number; ratioFinal: number }[];
    t.diagnostic(`‖∂L/∂h_1‖/‖∂L/∂h_T‖ at init: ${diag.map((d) => `${d.cell} ${d.ratioInit.toExponential(1)}`).join(', ')}`);
    assert.deepEqual(diag.map((d) => d.cell), ['rnn', 'lstm', 'gru']);
    // the vanilla RNN's gradient fades over 30 steps far more than the gated cells'
    assert.ok(diag[0].ratioInit < diag[1].ratioInit && diag[0].ratioInit < diag[2].ratioInit, JSON.stringify(diag));
    // exploding gradients: without clipping the norm runs away, with clipping it stays small
    await page.click('[data-testid="explode-go"]');
    await page.waitForFunction(() => /clip 1: largest/.test(document.querySelector('[data-testid="explode-status"]')?.textContent ?? ''), null, { timeout: 60_000 });
    const explode = (await page.textContent('[data-testid="explode-status"]'))!;
    t.diagnostic(explode);
    const largest = [...explode.matchAll(/largest ‖g‖ ([^,]+),/g)].map((m) => Number(m[1]));
    assert.equal(largest.length, 2, explode);
    assert.ok(!(largest[0] < 1e3 * largest[1]), `without clipping the gradient norm should run away: ${explode}`);
    await page.locator('#gradients').screenshot({ path: join(shots, 'gradients.png') });

    // a model file written by the CLI in this run: the same probabilities in the page as in Node
    const modelPath = await cliModel;
    await page.setInputFiles('[data-testid="files-input"]', modelPath);
    await page.waitForFunction(() => /classify-names/.test(document.querySelector('[data-testid="files-info"]')?.textContent ?? ''));
    await page.fill('[data-testid="files-text"]', 'Alice');
    await page.click('[data-testid="files-run"]');
    await page.waitForFunction(() => ((window as unknown as { __playground: { sections: Record<string, Section> } }).__playground.sections.files.output as { ran?: unknown } | null)?.ran !== undefined);
    const ran = ((await section(page, 'files')).output as { ran: { output: string; probabilities: { label: string; p: number }[] } }).ran;
    const be = await loadWasmBackend({ threads: 1 });
    let nodeProbs: number[];
    let aliceIds: number[];
    try {
      setBackend('wasm');
      const task = getTaskSpec('classify-names').load(decodeModel(readFileSync(modelPath)), modelPath).task as ClassificationTask;
      nodeProbs = classifierProbabilities(task, ['Alice'])[0];
      aliceIds = Array.from(task.encode('Alice'));
      assert.equal(ran.output, getTaskSpec('classify-names').predict(task, ['Alice'])[0]);
    } finally {
      setBackend('js');
      be.dispose();
    }
    t.diagnostic(`CLI model on 'Alice': page ${ran.probabilities.map((p) => p.p).join(', ')}; node ${nodeProbs.join(', ')}`);
    ran.probabilities.forEach((p, k) => assert.ok(Math.abs(p.p - nodeProbs[k]) <= 1e-5, `${p.label}: page ${p.p} vs node ${nodeProbs[k]}`));
    assert.equal(ran.output, recur(['predict', 'classify-names', '--model', modelPath, 'Alice']).trim());

    // the same model exported to ONNX by the CLI (with a softmax), opened and run in the page
    const onnxPath = join(tmp, 'names.onnx');
    recur(['export', modelPath, '--format', 'onnx', '--softmax', '-o', onnxPath]);
    await page.setInputFiles('[data-testid="files-input"]', onnxPath);
    await page.waitForFunction(() => /ONNX, inputs/.test(document.querySelector('[data-testid="files-info"]')?.textContent ?? ''));
    await page.fill('[data-testid="files-text"]', JSON.stringify({ input: { shape: [aliceIds.length, 1], data: aliceIds }, lengths: { shape: [1], data: [aliceIds.length] } }));
    await page.click('[data-testid="files-run"]');
    await page.waitForFunction(() => /^output \[1, 2\]: /.test(document.querySelector('[data-testid="files-output"]')?.textContent ?? ''));
    const onnxOut = (await page.textContent('[data-testid="files-output"]'))!;
    t.diagnostic(`ONNX in the page: ${onnxOut}`);
    const onnxProbs = onnxOut.replace(/^output \[1, 2\]: /, '').split(', ').map(Number);
    onnxProbs.forEach((p, k) => assert.ok(Math.abs(p - nodeProbs[k]) <= 1e-5, `ONNX ${k}: page ${p} vs node ${nodeProbs[k]}`));
    await page.locator('#files').screenshot({ path: join(shots, 'files.png') });

    // a file that is not a model: the CLI's words
    const junk = join(tmp, 'notes.safetensors');
    writeFileSync(junk, 'these are my notes, not a model\n');
    let cliError = '';
    try {
      recur(['predict', 'classify-names', '--model', junk, 'Alice']);
    } catch (e) {
      cliError = String((e as { stderr?: string }).stderr);
    }
    const cliReason = cliError.split(`${junk}: `)[1]?.trim();
    assert.ok(cliReason, `the CLI's error names the file: ${cliError}`);
    await page.setInputFiles('[data-testid="files-input"]', junk);
    await page.waitForFunction(() => (document.querySelector('[data-testid="files-error"]')?.textContent ?? '') !== '');
    assert.equal(await page.textContent('[data-testid="files-error"]'), `notes.safetensors: ${cliReason}`);

    // the classifier downloaded from the page runs in the CLI and says what the page says
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="names-download"]')]);
    const saved = join(tmp, download.suggestedFilename());
    await download.saveAs(saved);
    assert.equal(download.suggestedFilename(), 'classify-names.safetensors');
    await page.fill('[data-testid="names-input"]', 'Alice');
    await page.waitForFunction(() => ((window as unknown as { __playground: { sections: Record<string, Section> } }).__playground.sections.names.output as { text?: string } | null)?.text === 'Alice');
    const pageProbs = ((await section(page, 'names')).output as { probs: { label: string; p: number }[] }).probs;
    const pageLabel = pageProbs[0].p >= pageProbs[1].p ? 'female' : 'male';
    assert.equal(recur(['predict', 'classify-names', '--model', saved, 'Alice']).trim(), pageLabel);

    await page.screenshot({ path: join(shots, 'page.png'), fullPage: true });
    assert.deepEqual(problems, [], 'the page reported errors');
    assert.deepEqual(foreign, [], 'requests to other origins');
  });

  test('the WebGPU switch: the char-LM trains on WebGPU (SwiftShader); samples and the inside view read a host copy', async (t) => {
    // WebGPU needs a browser started without --disable-gpu; SwiftShader is Chromium's CPU adapter
    const gpuBrowser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'], timeout: 60_000 });
    try {
      const url = await serve(true);
      const { page, problems } = await open(`${url}?backend=webgpu`, undefined, gpuBrowser);
      assert.equal(await page.isChecked('[data-testid="webgpu-switch"]'), true);
      await page.waitForFunction(() => /webgpu/.test(document.querySelector('[data-testid="backend-info"]')?.textContent ?? ''), null, { timeout: 30_000 });
      const info = (await page.textContent('[data-testid="backend-info"]'))!;
      t.diagnostic(`backend: ${info}`);
      assert.match(info, /^webgpu \(.*swiftshader.*software adapter.*\) for training · wasm · \d+ thread/);
      // a small model: SwiftShader is the CPU
      await page.fill('#charlm-hidden', '32');
      const s = await train(page, 'charlm', 12);
      const { first, last } = fall(s);
      t.diagnostic(`char-LM on WebGPU: ${s.steps.length} steps, loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
      assert.ok(first - last >= 0.3, `loss fell by ${(first - last).toFixed(3)} < 0.3`);
      await page.click('[data-testid="charlm-sample-now"]');
      await page.waitForFunction(() => (document.querySelector('[data-testid="charlm-sample"]')?.textContent ?? '').length > 50, null, { timeout: 30_000 });
      await page.click('[data-testid="inside-go"]');
      await page.waitForFunction(() => (window as unknown as { __playground: { sections: Record<string, Section> } }).__playground.sections.inside.output !== null, null, { timeout: 30_000 });
      assert.deepEqual(((await section(page, 'inside')).output as { gates: string[] }).gates, ['input', 'forget', 'output']);
      assert.deepEqual(problems, [], 'the page reported errors');
    } finally {
      await gpuBrowser.close();
    }
  });

  test('not isolated: one thread, still trains; usable at phone width', async (t) => {
    const url = await serve(false);
    const { page, problems } = await open(url, { width: 390, height: 844 });
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    assert.equal(await page.evaluate(() => typeof SharedArrayBuffer), 'undefined');
    const info = (await page.textContent('[data-testid="backend-info"]'))!;
    t.diagnostic(`backend: ${info}`);
    assert.match(info, /1 thread · not isolated/);
    // the char-LM on text pasted into the page (split 90/10 by position)
    const own = 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity. '.repeat(20);
    await page.fill('#charlm-text', own);
    await page.check('#charlm-own');
    await page.selectOption('#charlm-cell', 'gru');
    const s = await train(page, 'charlm', 25);
    const { first, last } = fall(s);
    t.diagnostic(`GRU charlm on pasted text, 1 thread: loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
    assert.ok(first - last >= 0.5, `loss fell by ${(first - last).toFixed(3)} < 0.5`);
    assert.ok(first < Math.log(40), `the first loss ${first} should be about ln(vocabulary of the pasted text), not of Moby-Dick`);
    // a GRU's gates in the inside view, and its file in the CLI
    await page.click('[data-testid="inside-go"]');
    await page.waitForFunction(() => ((window as unknown as { __playground: { sections: Record<string, Section> } }).__playground.sections.inside.output as { cell?: string } | null)?.cell === 'gru');
    assert.deepEqual(((await section(page, 'inside')).output as { gates: string[] }).gates, ['reset', 'update']);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="charlm-download"]')]);
    const saved = join(tmp, 'gru-charlm.safetensors');
    await download.saveAs(saved);
    assert.match(recur(['info', saved]), /gru\.weight_ih_l0/);
    assert.ok(recur(['predict', 'charlm', '--model', saved, 'it was']).trim().length > 0);
    await page.click('[data-testid="charlm-reset"]');
    // Reset pauses the worker first, then clears the history
    await page.waitForFunction(() => (window as unknown as { __playground: { sections: Record<string, Section> } }).__playground.sections.charlm.steps.length === 0, null, { timeout: 10_000 });
    const { overflow, wide } = await page.evaluate(() => ({
      overflow: document.documentElement.scrollWidth - window.innerWidth,
      wide: Array.from(document.querySelectorAll('body *')).filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll')).slice(0, 5).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`),
    }));
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 390px (${wide.join(', ')})`);
    await page.screenshot({ path: join(shots, 'phone.png'), fullPage: false });
    assert.deepEqual(problems, [], 'the page reported errors');
  });
});

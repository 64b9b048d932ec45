/**
 * The playground page: one section per idea, each training section with its own worker
 * (worker.ts) so that the page never blocks. State a test (or a curious user) can read is kept in
 * `window.__playground`: per section the loss history, whether it runs, and what it shows.
 */
import './style.css';
import { drawHeatmap, LineChart } from './charts.ts';
import { describeBackend, threadsForPage, webgpuForPage, WorkerClient } from './client.ts';
import type { ModelOptions, SectionData, SectionKind, WorkerEvent } from './protocol.ts';

// ---- small DOM helpers ----------------------------------------------------------------------------------

type Attrs = Record<string, string | number | boolean | undefined>;
function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'text') e.textContent = String(v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  e.append(...children);
  return e;
}

function numberInput(label: string, id: string, value: number, o: { min?: number; max?: number; step?: number } = {}): [HTMLLabelElement, HTMLInputElement] {
  const input = el('input', { type: 'number', id, value, min: o.min, max: o.max, step: o.step ?? 'any' });
  return [el('label', { for: id }, label, input), input];
}

function select(label: string, id: string, options: string[], value: string): [HTMLLabelElement, HTMLSelectElement] {
  const s = el('select', { id }, ...options.map((o) => el('option', { value: o, selected: o === value, text: o.toUpperCase() })));
  return [el('label', { for: id }, label, s), s];
}

function button(text: string, testid: string, primary = false): HTMLButtonElement {
  return el('button', { type: 'button', 'data-testid': testid, class: primary ? 'primary' : undefined, text });
}

function showError(box: HTMLElement, e: unknown): void {
  box.textContent = e instanceof Error ? e.message : String(e);
}

function saveBytes(bytes: Uint8Array, name: string): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const main = document.getElementById('sections')!;
const backendInfo = document.getElementById('backend-info')!;
const threads = threadsForPage();
const webgpu = webgpuForPage();
// the WebGPU switch: shown where the browser has WebGPU; it reloads the page with or without ?backend=webgpu
const gpuSwitch = document.getElementById('webgpu-switch') as HTMLInputElement;
gpuSwitch.checked = webgpu;
if ('gpu' in navigator) gpuSwitch.parentElement!.hidden = false;
gpuSwitch.addEventListener('change', () => {
  const u = new URL(location.href);
  if (gpuSwitch.checked) u.searchParams.set('backend', 'webgpu');
  else u.searchParams.delete('backend');
  location.href = u.href;
});

interface SectionState {
  steps: number[];
  /** performance.now() when each step's event arrived (for throughput over a span of steps). */
  times: number[];
  loss: number[];
  val: (number | null)[];
  gradNorm: number[];
  evals: { step: number; loss: number }[];
  running: boolean;
  tokensPerSec: number;
  output: unknown;
}
const playground: { threads: number; backend: unknown; sections: Record<string, SectionState> } = { threads, backend: null, sections: {} };
(window as unknown as { __playground: typeof playground }).__playground = playground;

let dataCache: Promise<{ moby: { train: string; val: string }; names: { labels: string[]; train: [string, number][]; val: [string, number][] } }> | null = null;
function bundledData() {
  dataCache ??= Promise.all(['data/moby.json', 'data/names.json'].map((u) => fetch(u).then((r) => {
    if (!r.ok) throw new Error(`cannot load ${u}: HTTP ${r.status}`);
    return r.json();
  }))).then(([moby, names]) => ({ moby, names }));
  return dataCache;
}

// ---- a training section -------------------------------------------------------------------------------------

interface TrainConfig {
  kind: SectionKind;
  title: string;
  teaches: string;
  cells: ('rnn' | 'lstm' | 'gru')[];
  model: ModelOptions;
  lr: number;
  clipNorm: number;
  evalEvery: number;
  /** What a step's count is (characters, names, images). */
  unit: string;
  lossName: string;
}

class TrainSection {
  readonly root: HTMLElement;
  readonly extra: HTMLElement;
  readonly state: SectionState;
  private worker: WorkerClient | null = null;
  readonly error: HTMLElement;
  private built = false;
  private readonly inputs: Record<string, HTMLInputElement | HTMLSelectElement> = {};
  private readonly lossChart: LineChart;
  private readonly gradChart: LineChart;
  private readonly stats: HTMLElement;
  private readonly startBtn: HTMLButtonElement;
  private readonly pauseBtn: HTMLButtonElement;
  private readonly listeners: ((running: boolean) => void)[] = [];
  private lastStats = 0;

  constructor(readonly cfg: TrainConfig, private readonly data: () => Promise<SectionData>) {
    this.state = { steps: [], times: [], loss: [], val: [], gradNorm: [], evals: [], running: false, tokensPerSec: 0, output: null };
    playground.sections[cfg.kind] = this.state;
    const id = (k: string) => `${cfg.kind}-${k}`;
    const controls = el('div', { class: 'controls', role: 'group', 'aria-label': `${cfg.title} training` });
    const add = (pair: [HTMLLabelElement, HTMLInputElement | HTMLSelectElement], key: string) => {
      controls.append(pair[0]);
      this.inputs[key] = pair[1];
    };
    if (cfg.cells.length > 1) add(select('cell', id('cell'), cfg.cells, cfg.model.cell), 'cell');
    else controls.append(el('label', {}, 'cell', el('span', { text: `${cfg.cells[0].toUpperCase()}` })));
    add(numberInput('hidden size', id('hidden'), cfg.model.hiddenSize, { min: 1, max: 1024, step: 1 }), 'hiddenSize');
    if (cfg.kind !== 'caption') add(numberInput('layers', id('layers'), cfg.model.numLayers, { min: 1, max: 4, step: 1 }), 'numLayers');
    add(numberInput('learning rate', id('lr'), cfg.lr, { min: 0, step: 0.001 }), 'lr');
    add(numberInput('clip norm (0: off)', id('clip'), cfg.clipNorm, { min: 0, step: 0.5 }), 'clipNorm');
    this.startBtn = button('Start', id('start'), true);
    this.pauseBtn = button('Pause', id('pause'));
    this.pauseBtn.disabled = true;
    const resetBtn = button('Reset', id('reset'));
    const downloadBtn = button('Download model', id('download'));
    controls.append(this.startBtn, this.pauseBtn, resetBtn, downloadBtn);
    this.startBtn.addEventListener('click', () => void this.start());
    this.pauseBtn.addEventListener('click', () => void this.pause());
    resetBtn.addEventListener('click', () => void this.reset());
    downloadBtn.addEventListener('click', () => void this.download());

    this.stats = el('p', { class: 'stats', 'data-testid': id('stats'), 'aria-live': 'off', text: 'not started — model changes apply on Reset' });
    this.error = el('p', { class: 'error', role: 'alert', 'data-testid': id('error') });
    const lossHost = el('div');
    const gradHost = el('div');
    this.extra = el('div');
    this.root = el('section', { id: cfg.kind, 'aria-labelledby': id('title') },
      el('h2', { id: id('title'), text: cfg.title }),
      el('p', { class: 'teaches', text: cfg.teaches }),
      controls, this.stats, this.error,
      el('div', { class: 'grid' }, lossHost, gradHost),
      this.extra);
    main.append(this.root);
    this.lossChart = new LineChart(lossHost, { title: `${cfg.lossName}: training and validation`, x: 'step', y: cfg.lossName, series: [
      { label: 'train', stroke: '#2a6ad8' }, { label: 'validation', stroke: '#d8572a', spanGaps: true },
    ] });
    this.gradChart = new LineChart(gradHost, { title: 'global gradient norm (before clipping)', x: 'step', y: '‖g‖', logY: true, series: [{ label: '‖g‖', stroke: '#444' }] });
  }

  /** The section's worker, started on first use (each loads its own wasm backend and threads). */
  get client(): WorkerClient {
    return (this.worker ??= new WorkerClient(threads, webgpu, (e) => this.onEvent(e)));
  }

  onRunning(cb: (running: boolean) => void): void {
    this.listeners.push(cb);
  }

  private options(): ModelOptions {
    const n = (k: string, d: number) => {
      const i = this.inputs[k];
      const v = i ? Number(i.value) : d;
      if (!Number.isFinite(v) || v < 0) throw new RangeError(`${k}: expected a non-negative number, got ${JSON.stringify(i?.value)}`);
      return v;
    };
    return {
      ...this.cfg.model,
      cell: ((this.inputs.cell?.value ?? this.cfg.cells[0]) as ModelOptions['cell']),
      hiddenSize: Math.round(n('hiddenSize', this.cfg.model.hiddenSize)),
      numLayers: Math.round(n('numLayers', this.cfg.model.numLayers)),
    };
  }

  private num(k: 'lr' | 'clipNorm'): number {
    const v = Number(this.inputs[k].value);
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`${k === 'lr' ? 'learning rate' : 'clip norm'}: expected a non-negative number, got ${JSON.stringify(this.inputs[k].value)}`);
    return v;
  }

  async start(): Promise<void> {
    this.error.textContent = '';
    try {
      if (!this.built) {
        this.stats.textContent = 'building…';
        await this.client.call({ type: 'build', kind: this.cfg.kind, options: this.options(), data: await this.data() });
        this.built = true;
      }
      await this.client.call({ type: 'start', lr: this.num('lr'), clipNorm: this.num('clipNorm'), evalEvery: this.cfg.evalEvery });
    } catch (e) {
      showError(this.error, e);
      this.stats.textContent = 'not started';
    }
  }

  async pause(): Promise<void> {
    try {
      await this.client.call({ type: 'pause' });
    } catch (e) {
      showError(this.error, e);
    }
  }

  async reset(): Promise<void> {
    if (this.built) await this.pause();
    this.built = false;
    const s = this.state;
    s.steps.length = s.times.length = s.loss.length = s.val.length = s.gradNorm.length = s.evals.length = 0;
    this.redraw();
    this.stats.textContent = 'reset — press Start to build a fresh model with the settings above';
  }

  async download(): Promise<void> {
    this.error.textContent = '';
    try {
      const { bytes, name } = await this.client.call<{ bytes: Uint8Array; name: string }>({ type: 'download' });
      saveBytes(bytes, name);
    } catch (e) {
      showError(this.error, e);
    }
  }

  private redraw(): void {
    const s = this.state;
    this.lossChart.set([s.steps, s.loss, s.val]);
    this.gradChart.set([s.steps, s.gradNorm]);
  }

  onEvent(e: WorkerEvent): void {
    const s = this.state;
    if (e.type === 'step') {
      s.steps.push(e.step);
      s.times.push(performance.now());
      s.loss.push(e.loss);
      s.val.push(null);
      s.gradNorm.push(e.gradNorm);
      s.tokensPerSec = e.tokensPerSec;
      this.redraw();
      const now = performance.now();
      if (now - this.lastStats > 200) {
        this.lastStats = now;
        const v = s.evals.at(-1);
        this.stats.textContent = `step ${e.step} · ${this.cfg.lossName} ${e.loss.toFixed(3)}${v ? ` · validation ${v.loss.toFixed(3)}` : ''} · ${Math.round(e.tokensPerSec).toLocaleString('en')} ${this.cfg.unit}/s${e.clipped ? ' · clipped' : ''}`;
      }
    } else if (e.type === 'eval') {
      s.evals.push({ step: e.step, loss: e.loss });
      const i = s.steps.lastIndexOf(e.step);
      if (i >= 0) s.val[i] = e.loss;
      this.redraw();
    } else if (e.type === 'state') {
      s.running = e.running;
      this.startBtn.disabled = e.running;
      this.pauseBtn.disabled = !e.running;
      if (!e.running && e.step !== undefined) this.stats.textContent = `paused at step ${e.step}${this.stats.textContent?.startsWith('step') ? ` — ${this.stats.textContent.split(' · ').slice(1).join(' · ')}` : ''}`;
      for (const cb of this.listeners) cb(e.running);
    } else if (e.type === 'log') {
      if (e.error) this.error.textContent = e.message;
      else this.stats.title = e.message;
    }
  }
}

/** Run `fn` every `ms` while the section trains (and once when it pauses). */
function whileTraining(section: TrainSection, ms: number, fn: () => Promise<void>): void {
  let timer: ReturnType<typeof setInterval> | null = null;
  let busy = false;
  const tick = () => {
    if (busy) return;
    busy = true;
    fn().catch((e) => showError(section.error, e)).finally(() => (busy = false));
  };
  section.onRunning((running) => {
    if (running && !timer) timer = setInterval(tick, ms);
    if (!running && timer) {
      clearInterval(timer);
      timer = null;
      tick();
    }
  });
}

// ---- the char-LM --------------------------------------------------------------------------------------

const charlm = new TrainSection({
  kind: 'charlm', title: 'Character language model (many-to-many)',
  teaches: 'A recurrent network reads text one character at a time and learns to predict the next one — every step has an output. Watch the loss fall from ln(vocabulary) towards ~1.5 nats, and the samples turn from noise into words. Try the three cells at the same size: the gated LSTM and GRU learn faster than the vanilla RNN. The downloaded file is recur\'s charlm model (`recur predict charlm`, `recur sample`).',
  cells: ['lstm', 'gru', 'rnn'], model: { cell: 'lstm', hiddenSize: 128, numLayers: 1, batchSize: 32, seqLen: 64, seed: 1 }, lr: 0.01, clipNorm: 5, evalEvery: 50, unit: 'characters', lossName: 'cross-entropy (nats/char)',
}, async () => {
  const custom = useOwn.checked ? ownText.value : '';
  if (useOwn.checked && custom.length === 0) throw new Error('paste some text first, or untick "train on my text"');
  return custom ? { custom } : (await bundledData()).moby;
});
const ownText = el('textarea', { id: 'charlm-text', rows: 4, placeholder: 'Paste your own text here (a few thousand characters or more), tick the box, then Reset and Start.', 'aria-label': 'your own training text' });
const useOwn = el('input', { type: 'checkbox', id: 'charlm-own' });
const temperature = el('input', { type: 'range', id: 'charlm-temp', min: 0, max: 2, step: 0.05, value: 0.8 });
const tempOut = el('output', { for: 'charlm-temp', text: '0.8' });
const prime = el('input', { type: 'text', id: 'charlm-prime', value: 'The whale', size: 16 });
const sampleBox = el('div', { class: 'sample', 'data-testid': 'charlm-sample', 'aria-live': 'polite' });
const sampleBtn = button('Sample now', 'charlm-sample-now');
charlm.extra.append(
  el('div', { class: 'controls' }, el('label', { for: 'charlm-own' }, el('span', { text: 'train on my text' }), useOwn),
    el('label', { for: 'charlm-temp' }, 'temperature', temperature, tempOut), el('label', { for: 'charlm-prime' }, 'prime', prime), sampleBtn),
  el('h3', { text: 'Samples while it learns' }), sampleBox, ownText);
let sampleSeed = 1;
async function sampleCharLM(): Promise<void> {
  const text = await charlm.client.call<string>({ type: 'sample', prime: prime.value, length: 240, temperature: Number(temperature.value), seed: sampleSeed++ });
  sampleBox.textContent = prime.value + text;
  charlm.state.output = sampleBox.textContent;
}
temperature.addEventListener('input', () => {
  tempOut.textContent = temperature.value;
});
temperature.addEventListener('change', () => void sampleCharLM().catch((e) => showError(charlm.error, e)));
sampleBtn.addEventListener('click', () => void sampleCharLM().catch((e) => showError(charlm.error, e)));
whileTraining(charlm, 1500, sampleCharLM);

charlm.client.backend.then((b) => {
  playground.backend = b;
  backendInfo.textContent = describeBackend(b);
}, (e) => {
  backendInfo.textContent = `failed: ${(e as Error).message}`;
});

// ---- inside the network (the char-LM's hidden state and gates) ---------------------------------------------

{
  const root = el('section', { id: 'inside', 'aria-labelledby': 'inside-title' });
  const text = el('input', { type: 'text', id: 'inside-text', value: 'Call me Ishmael. Some years ago—never mind how long precisely', size: 48 });
  const units = el('input', { type: 'number', id: 'inside-units', value: 24, min: 1, max: 512, step: 1 });
  const go = button('Look inside', 'inside-go', true);
  const err = el('p', { class: 'error', role: 'alert' });
  const hCanvas = el('canvas', { 'data-testid': 'inside-hidden', role: 'img', 'aria-label': 'hidden state heatmap: units by characters' });
  const gatesBox = el('div');
  root.append(
    el('h2', { id: 'inside-title', text: 'Inside the network' }),
    el('p', { class: 'teaches', text: 'The char-LM\'s first recurrent layer over a piece of text: each column is a character, each row a hidden unit. Hidden state h_t (blue −1 … red +1), then the gates (0 white … 1 dark): an LSTM\'s input, forget and output gates, a GRU\'s reset and update gates. Some units switch on inside words, after spaces or inside quotes; forget (LSTM) and update (GRU) gates near 1 are memory being kept. Train the char-LM above first, then look again.' }),
    el('div', { class: 'controls' }, el('label', { for: 'inside-text' }, 'text', text), el('label', { for: 'inside-units' }, 'units shown', units), go),
    err,
    el('h3', { text: 'hidden state h_t' }), el('div', { class: 'scroll' }, hCanvas),
    gatesBox,
  );
  main.append(root);
  const inside: SectionState = { steps: [], times: [], loss: [], val: [], gradNorm: [], evals: [], running: false, tokensPerSec: 0, output: null };
  playground.sections.inside = inside;
  const look = async () => {
    err.textContent = '';
    try {
      const r = await charlm.client.call<{ cell: string; chars: string[]; h: number[][]; gates: { name: string; rows: number[][] }[] }>({ type: 'inspect', text: text.value });
      const U = Math.max(1, Math.min(Number(units.value) || 24, r.h[0]?.length ?? 1));
      // rows = units, columns = characters
      const byUnit = (m: number[][]) => Array.from({ length: U }, (_, u) => m.map((row) => row[u]));
      drawHeatmap(hCanvas, byUnit(r.h), { labels: r.chars });
      gatesBox.replaceChildren(...(r.gates.length ? r.gates.flatMap(({ name, rows }) => {
        const c = el('canvas', { role: 'img', 'aria-label': `${name} gate activations: units by characters` });
        drawHeatmap(c, byUnit(rows), { labels: r.chars, unit: true });
        return [el('h3', { text: `${name} gate` }), el('div', { class: 'scroll' }, c)];
      }) : [el('p', { text: 'A vanilla RNN has no gates: every step rewrites the whole state through one tanh.' })]));
      inside.output = { inspected: r.chars.length, cell: r.cell, gates: r.gates.map((g) => g.name) };
    } catch (e) {
      showError(err, e);
    }
  };
  go.addEventListener('click', () => void look());
}

/** The first-name lists with the CLI's fixed split: what the classifier and the generator train on. */
async function namesData() {
  const d = (await bundledData()).names;
  return { labels: d.labels, names: { train: d.train, val: d.val } };
}

// ---- name classifier (many-to-one) -----------------------------------------------------------------------

const names = new TrainSection({
  kind: 'names', title: 'Name classifier (many-to-one)',
  teaches: 'A bidirectional recurrent network reads a first name and gives one answer at the end: female or male (as labelled in the name lists). Type a name and watch the probabilities move as you type — and as it learns. Compare the cells: on names this short, RNN, LSTM and GRU all learn.',
  cells: ['gru', 'lstm', 'rnn'], model: { cell: 'gru', hiddenSize: 64, numLayers: 1, batchSize: 32, seqLen: 0, seed: 1 }, lr: 0.005, clipNorm: 1, evalEvery: 100, unit: 'names', lossName: 'cross-entropy',
}, namesData);
{
  const input = el('input', { type: 'text', id: 'names-input', 'data-testid': 'names-input', value: 'Alice', autocomplete: 'off' });
  const bars = el('div', { class: 'bars', 'data-testid': 'names-probs', 'aria-live': 'polite' });
  names.extra.append(el('div', { class: 'controls' }, el('label', { for: 'names-input' }, 'type a name', input)), bars);
  let inFlight = false, again = false;
  const classify = async (): Promise<void> => {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    try {
      const text = input.value.trim();
      if (!text) {
        bars.textContent = '';
        return;
      }
      const probs = await names.client.call<{ label: string; p: number }[]>({ type: 'classify', text });
      bars.replaceChildren(...probs.flatMap(({ label, p }) => [el('span', { text: label }), el('div', { class: 'bar', style: `width:${(p * 100).toFixed(1)}%` }), el('span', { 'data-label': label, 'data-p': p, text: `${(p * 100).toFixed(1)}%` })]));
      names.state.output = { text, probs };
    } catch (e) {
      bars.textContent = (e as Error).message;
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        void classify();
      }
    }
  };
  input.addEventListener('input', () => void classify());
  whileTraining(names, 1000, classify);
}

// ---- name generator (one-to-many) -------------------------------------------------------------------------

const namegen = new TrainSection({
  kind: 'namegen', title: 'Name generator (one-to-many)',
  teaches: 'One input — female or male — and many outputs: the network writes a name one character at a time, each sampled character fed back in, until it writes the end token. Low temperature gives common names, high temperature inventive ones.',
  cells: ['gru', 'lstm', 'rnn'], model: { cell: 'gru', hiddenSize: 128, numLayers: 1, batchSize: 32, seqLen: 0, seed: 1 }, lr: 0.005, clipNorm: 1, evalEvery: 100, unit: 'characters', lossName: 'cross-entropy (nats/char)',
}, namesData);
{
  const [condLabel, cond] = select('gender', 'namegen-cond', ['female', 'male'], 'female');
  const temp = el('input', { type: 'range', id: 'namegen-temp', min: 0.1, max: 2, step: 0.05, value: 0.8 });
  const gen = button('Generate', 'namegen-go');
  const out = el('div', { class: 'sample', 'data-testid': 'namegen-sample', 'aria-live': 'polite' });
  namegen.extra.append(el('div', { class: 'controls' }, condLabel, el('label', { for: 'namegen-temp' }, 'temperature', temp), gen), out);
  let seed = 1;
  const generate = async () => {
    const list = await namegen.client.call<string[]>({ type: 'generate', condition: cond.value, count: 12, temperature: Number(temp.value), seed: seed++ });
    out.textContent = list.join('  ');
    namegen.state.output = list;
  };
  gen.addEventListener('click', () => void generate().catch((e) => showError(namegen.error, e)));
  whileTraining(namegen, 1500, generate);
}

// ---- captioning (encoder–decoder) ---------------------------------------------------------------------------

const caption = new TrainSection({
  kind: 'caption', title: 'Captioning generated shapes (encoder–decoder)',
  teaches: 'An encoder–decoder: a small convolutional encoder turns the picture into the LSTM decoder\'s initial state, and the decoder writes the caption word by word ("a red circle left of a blue square"). The images are generated, so there is always new data; the pictures below are held out.',
  cells: ['lstm'], model: { cell: 'lstm', hiddenSize: 96, numLayers: 1, batchSize: 32, seqLen: 0, seed: 1 }, lr: 0.003, clipNorm: 5, evalEvery: 50, unit: 'images', lossName: 'cross-entropy (nats/word)',
}, async () => ({}));
{
  const gallery = el('div', { class: 'captions', 'data-testid': 'caption-gallery', 'aria-live': 'polite' });
  const refresh = button('New pictures', 'caption-go');
  caption.extra.append(el('div', { class: 'controls' }, refresh), gallery);
  let first = 0;
  const show = async () => {
    const items = await caption.client.call<{ image: number[]; size: number; truth: string; predicted: string }[]>({ type: 'caption', seed: 777, indices: Array.from({ length: 6 }, (_, k) => first + k) });
    gallery.replaceChildren(...items.map((it) => {
      const c = el('canvas', { width: it.size, height: it.size, role: 'img', 'aria-label': it.truth });
      const g = c.getContext('2d')!;
      const img = g.createImageData(it.size, it.size);
      const S2 = it.size * it.size;
      for (let p = 0; p < S2; p++) {
        for (let ch = 0; ch < 3; ch++) img.data[p * 4 + ch] = Math.round(255 * Math.max(0, Math.min(1, it.image[ch * S2 + p])));
        img.data[p * 4 + 3] = 255;
      }
      g.putImageData(img, 0, 0);
      const right = it.predicted === it.truth;
      return el('figure', {}, c, el('figcaption', {}, el('div', { class: right ? 'ok' : 'bad', text: it.predicted || '(nothing)' }), el('div', { text: `truth: ${it.truth}` })));
    }));
    caption.state.output = items.map((it) => ({ truth: it.truth, predicted: it.predicted }));
  };
  refresh.addEventListener('click', () => {
    first += 6;
    void show().catch((e) => showError(caption.error, e));
  });
  whileTraining(caption, 2500, show);
}

// ---- gradients: vanishing and exploding ----------------------------------------------------------------------

{
  let client: WorkerClient | null = null;
  const worker = () => (client ??= new WorkerClient(threads, false, () => {})); // the lessons and the Files section stay on wasm
  const root = el('section', { id: 'gradients', 'aria-labelledby': 'gradients-title' });
  const [lagL, lag] = numberInput('lag T', 'diag-lag', 50, { min: 2, max: 400, step: 1 });
  const [stepsL, steps] = numberInput('training steps', 'diag-steps', 300, { min: 1, max: 5000, step: 1 });
  const run = button('Measure ‖∂L/∂h_t‖', 'diag-go', true);
  const status = el('p', { class: 'stats', 'data-testid': 'diag-status' });
  const hosts = [el('div'), el('div'), el('div')];
  const [eLrL, eLr] = numberInput('learning rate (SGD)', 'explode-lr', 0.5, { min: 0, step: 0.05 });
  const [eClipL, eClip] = numberInput('clip norm', 'explode-clip', 1, { min: 0.01, step: 0.5 });
  const eRun = button('Train without and with clipping', 'explode-go', true);
  const eStatus = el('p', { class: 'stats', 'data-testid': 'explode-status' });
  const eHost = el('div');
  root.append(
    el('h2', { id: 'gradients-title', text: 'Vanishing and exploding gradients' }),
    el('p', { class: 'teaches', text: 'The adding problem: add the two marked numbers of a long sequence, so the answer depends on inputs T steps back. The charts show how much loss gradient reaches each step, ‖∂L/∂h_t‖ against t, for a vanilla RNN, an LSTM and a GRU side by side, at initialisation (dashed) and after training — measured as `recur diagnose` measures it. In the RNN the gradient shrinks geometrically going back in time: early inputs get no learning signal. The gates of LSTM and GRU keep a path open.' }),
    el('div', { class: 'controls' }, lagL, stepsL, run), status,
    el('div', { class: 'grid3' }, ...hosts),
    el('h3', { text: 'Exploding gradients and clipping' }),
    el('p', { class: 'teaches', text: 'The other way round: with a large learning rate a vanilla RNN\'s gradient norm can blow up by orders of magnitude in one step and wreck the weights. Clipping the global norm rescales such a step to a fixed length. The chart shows the gradient norm per step without clipping and with it.' }),
    el('div', { class: 'controls' }, eLrL, eClipL, eRun), eStatus, eHost);
  main.append(root);
  const charts = (['rnn', 'lstm', 'gru'] as const).map((cell, k) => new LineChart(hosts[k], { title: cell.toUpperCase(), x: 't', y: '‖∂L/∂h_t‖', logY: true, height: 200, series: [
    { label: 'init', stroke: '#999', dash: [4, 4] }, { label: 'trained', stroke: '#2a6ad8' },
  ] }));
  const eChart = new LineChart(eHost, { title: 'gradient norm per step', x: 'step', y: '‖g‖', logY: true, series: [{ label: 'no clipping', stroke: '#d8572a' }, { label: 'clipped', stroke: '#2a6ad8' }] });
  const state: SectionState = { steps: [], times: [], loss: [], val: [], gradNorm: [], evals: [], running: false, tokensPerSec: 0, output: null };
  playground.sections.gradients = state;
  run.addEventListener('click', async () => {
    run.disabled = true;
    status.textContent = 'training RNN, LSTM and GRU…';
    try {
      const t0 = performance.now();
      const runs = await worker().call<{ cell: string; gradInit: number[]; gradFinal: number[]; mse: number; mseInit: number }[]>({ type: 'diagnose', lag: Number(lag.value), steps: Number(steps.value), hiddenSize: 32 });
      runs.forEach((r, k) => {
        const t = r.gradInit.map((_, i) => i + 1);
        charts[k].set([t, r.gradInit.map((v) => Math.max(v, 1e-30)), r.gradFinal.map((v) => Math.max(v, 1e-30))]);
      });
      const ratio = (g: number[]) => g[0] / g[g.length - 1];
      status.textContent = `${((performance.now() - t0) / 1000).toFixed(1)} s · ` + runs.map((r) => `${r.cell.toUpperCase()}: ‖∂L/∂h_1‖/‖∂L/∂h_T‖ ${ratio(r.gradFinal).toExponential(1)}, MSE ${r.mse.toFixed(3)} (chance 0.167)`).join(' · ');
      state.output = runs.map((r) => ({ cell: r.cell, ratioInit: ratio(r.gradInit), ratioFinal: ratio(r.gradFinal), mse: r.mse }));
    } catch (e) {
      showError(status, e);
    } finally {
      run.disabled = false;
    }
  });
  eRun.addEventListener('click', async () => {
    eRun.disabled = true;
    eStatus.textContent = 'training…';
    try {
      const runs = await worker().call<{ clip: number; gradNorm: number[]; loss: number[] }[]>({ type: 'explode', lag: 30, steps: 200, lr: Number(eLr.value), clip: Number(eClip.value), cell: 'rnn' });
      const n = Math.max(...runs.map((r) => r.gradNorm.length));
      const pad = (a: number[]) => Array.from({ length: n }, (_, i) => (i < a.length && Number.isFinite(a[i]) ? Math.max(a[i], 1e-30) : null));
      eChart.set([Array.from({ length: n }, (_, i) => i + 1), pad(runs[0].gradNorm), pad(runs[1].gradNorm)]);
      const max = (a: number[]) => a.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, v) : Infinity), 0);
      eStatus.textContent = runs.map((r) => `${r.clip ? `clip ${r.clip}` : 'no clipping'}: largest ‖g‖ ${max(r.gradNorm).toExponential(1)}, final loss ${Number(r.loss.at(-1)).toPrecision(3)}`).join(' · ');
    } catch (e) {
      showError(eStatus, e);
    } finally {
      eRun.disabled = false;
    }
  });
}

// ---- files ---------------------------------------------------------------------------------------------------

{
  let client: WorkerClient | null = null;
  const worker = () => (client ??= new WorkerClient(threads, false, () => {})); // the lessons and the Files section stay on wasm
  const root = el('section', { id: 'files', 'aria-labelledby': 'files-title' });
  const file = el('input', { type: 'file', id: 'files-input', 'data-testid': 'files-input', accept: '.safetensors,.onnx' });
  const info = el('p', { class: 'stats', 'data-testid': 'files-info' });
  const err = el('p', { class: 'error', role: 'alert', 'data-testid': 'files-error' });
  const input = el('input', { type: 'text', id: 'files-text', 'data-testid': 'files-text', size: 40, placeholder: 'input: a name, a prompt, female/male, SEED:INDEX, or JSON for ONNX' });
  const run = button('Run', 'files-run', true);
  const out = el('div', { class: 'sample', 'data-testid': 'files-output', 'aria-live': 'polite' });
  root.append(
    el('h2', { id: 'files-title', text: 'Files' }),
    el('p', { class: 'teaches', text: 'A model is a file. "Download model" in each section saves the same safetensors file `recur train` writes (tensor names as in PyTorch, config and vocabulary in the metadata). Here you can open a model made by the CLI (or imported from PyTorch with `recur import`) or an ONNX model, and run it.' }),
    el('div', { class: 'controls' }, el('label', { for: 'files-input' }, 'model file (.safetensors or .onnx)', file)),
    info, err,
    el('div', { class: 'controls' }, el('label', { for: 'files-text' }, 'input', input), run), out);
  main.append(root);
  const state: SectionState = { steps: [], times: [], loss: [], val: [], gradNorm: [], evals: [], running: false, tokensPerSec: 0, output: null };
  playground.sections.files = state;
  file.addEventListener('change', async () => {
    err.textContent = info.textContent = out.textContent = '';
    const f = file.files?.[0];
    if (!f) return;
    try {
      const bytes = new Uint8Array(await f.arrayBuffer());
      const r = await worker().call<{ kind: 'task'; task: string; config: unknown } | { kind: 'onnx'; inputs: { name: string; shape: unknown; dtype: string }[]; outputs: string[] }>({ type: 'open', name: f.name, bytes }, [bytes.buffer]);
      info.textContent = r.kind === 'task' ? `${f.name}: a recur '${r.task}' model` : `${f.name}: ONNX, inputs ${r.inputs.map((i) => `${i.name} ${JSON.stringify(i.shape)} ${i.dtype}`).join(', ')} → ${r.outputs.join(', ')}`;
      state.output = { opened: r };
    } catch (e) {
      showError(err, e);
      state.output = { error: err.textContent };
    }
  });
  const go = async () => {
    err.textContent = '';
    try {
      const r = await worker().call<{ output: string; probabilities?: { label: string; p: number }[] }>({ type: 'run', input: input.value });
      out.textContent = r.output + (r.probabilities ? `\n${r.probabilities.map((p) => `${p.label} ${p.p.toFixed(6)}`).join('  ')}` : '');
      state.output = { ran: r };
    } catch (e) {
      showError(err, e);
    }
  };
  run.addEventListener('click', () => void go());
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') void go();
  });
}

/**
 * The playground's training worker: one per page section, so a section that trains never blocks
 * the page or another section. It owns the wasm backend (threads when the page is cross-origin
 * isolated), one task (built from the bundled data, or loaded from a file) and the Trainer.
 *
 * Protocol (types in protocol.ts): the page sends requests {id, type, ...}; each gets exactly one
 * reply {id, ok, result | error}. While training, the worker also posts events without an id:
 * 'step' (loss, gradient norm, tokens/s), 'eval' (validation loss) and 'state' (running or not).
 * Training is the Trainer's async fit, which yields to the event loop about every 50 ms, so
 * requests (pause, sample, predict) are answered while it runs.
 *
 * With the WebGPU switch (init's `webgpu`), the section's model is built and trained on the WebGPU
 * backend; everything that reads the model synchronously (sampling, predictions, the hidden-state
 * view, downloads) runs on a host copy of its weights (`onHost`). The lessons that train their own
 * small networks (gradients, exploding gradients) and the Files section stay on wasm.
 */
import { decodeModel, noGrad, Rng, setBackend, Trainer, withHostWeights, type BatchSource, type StepInfo, type Task } from 'recurjs';
import { loadWasmBackend } from 'recurjs/wasm';
import { loadWebGpuBackend } from 'recurjs/webgpu';
import {
  AddingNet, addingBatch, buildCaption, buildClassifier, buildLM, buildNameGen, CaptionTask, classifierProbabilities, ClassificationTask,
  encodeTask, getTaskSpec, LMTask, NameGenTask, runDiagnose, shapeSample, taskNameOf, traceCharLM, type DiagnoseCell,
} from 'recurjs/models';
import { loadOnnx, type OnnxInput, type OnnxModel } from 'recurjs/onnx';
import type { BackendInfo, BuildRequest, Reply, Request, SectionKind, WorkerEvent } from './protocol.ts';

const post = (m: Reply | WorkerEvent, transfer: Transferable[] = []): void => (self as unknown as Worker).postMessage(m, transfer);

let backend: BackendInfo | null = null;

interface Session {
  kind: SectionKind;
  task: Task<any>;
  train: BatchSource<any> | null;
  val: BatchSource<any> | null;
  trainer: Trainer<any> | null;
  running: Promise<void> | null;
  /** The metric name of the 'eval' events. */
  metric: string;
}

let session: Session | null = null;
/** A model opened from a file (the Files section): a recur task, or an ONNX graph. */
let opened: { kind: 'task'; name: string; task: Task<any> } | { kind: 'onnx'; model: OnnxModel } | null = null;

/** Whether the section models are built on WebGPU (the switch was on and the backend loaded). */
let onGpu = false;

async function init(threads: number, webgpu: boolean): Promise<BackendInfo> {
  if (backend) return backend;
  const be = await loadWasmBackend({ threads });
  setBackend('wasm');
  const stats = be.stats();
  backend = { name: 'wasm', threads: stats.threads, isolated: (self as unknown as { crossOriginIsolated?: boolean }).crossOriginIsolated === true, variant: stats.variant };
  if (webgpu) {
    try {
      const a = (await loadWebGpuBackend()).adapter;
      backend.gpu = { adapter: [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unnamed adapter', software: a.software };
      onGpu = true;
    } catch (e) {
      backend.gpu = { error: (e as Error).message };
    }
  }
  return backend;
}

/** The default backend while `fn` runs: WebGPU for the section models when the switch is on. */
function onModelBackend<R>(fn: () => R): R {
  if (!onGpu) return fn();
  setBackend('webgpu');
  try {
    return fn();
  } finally {
    setBackend('wasm');
  }
}

/**
 * fn with the session's weights readable on the host: at once on wasm; on WebGPU on a host copy,
 * taken between two training steps when training runs (the weights change during a step), at once
 * when it does not.
 */
function onHost<R>(s: Session, fn: () => R): Promise<R> {
  if (!onGpu) return Promise.resolve().then(fn);
  const running = s.running;
  if (!running || !s.trainer) return withHostWeights(s.task.model, fn);
  const trainer = s.trainer;
  return new Promise<R>((resolve, reject) => {
    let done = false;
    const run = (): void => {
      if (done) return;
      done = true;
      try {
        resolve(fn());
      } catch (e) {
        reject(e);
      }
    };
    trainer.afterStepOnHost(run);
    // training may stop before another step: then take the copy once it has
    void running.then(() => {
      if (!done) {
        done = true;
        withHostWeights(s.task.model, fn).then(resolve, reject);
      }
    });
  });
}

// ---- building the tasks from the bundled data ---------------------------------------------------------

/** The registry's defaults of a task, with the page's choices over them (one record of defaults: the registry). */
function defaults(name: string): Record<string, any> {
  return { ...getTaskSpec(name).defaults };
}

function build(r: BuildRequest): Session {
  const o = r.options;
  if (r.kind === 'charlm') {
    const d = defaults('charlm');
    const text = r.data.custom;
    const split = text ? { train: text.slice(0, Math.floor(text.length * 0.9)), val: text.slice(Math.floor(text.length * 0.9)) } : { train: r.data.train!, val: r.data.val! };
    if (split.train.length < o.seqLen + 1 || split.val.length < 2 * o.seqLen) throw new RangeError(`charlm: your text is too short (${text?.length ?? 0} characters); paste at least ${Math.ceil((2 * o.seqLen) / 0.1)} characters`);
    const built = buildLM({
      cell: o.cell, embeddingDim: d.embeddingDim, hiddenSize: o.hiddenSize, numLayers: o.numLayers, seqLen: o.seqLen, batchSize: o.batchSize,
      stepsPerEpoch: 100, evalBatchSize: 16, seed: o.seed, generation: { length: 200, temperature: 0.8 },
    }, split);
    return { kind: r.kind, task: built.task, train: built.train, val: built.val, trainer: null, running: null, metric: 'loss' };
  }
  if (r.kind === 'names') {
    const d = defaults('classify-names');
    // the classification data: the generation split less the names in both lists (as the CLI's firstNames({ambiguous: 'drop'}))
    const unambiguous = (list: [string, number][]) => {
      const n = new Map<string, number>();
      for (const [name] of list) n.set(name, (n.get(name) ?? 0) + 1);
      return list.filter(([name]) => n.get(name) === 1).map(([text, label]) => ({ text, label }));
    };
    const built = buildClassifier('classify-names', r.data.labels!, {
      tokenizer: d.tokenizer, lowercase: d.lowercase, minCount: d.minCount, maxVocab: d.maxVocab, cell: o.cell, embeddingDim: d.embeddingDim,
      hiddenSize: o.hiddenSize, numLayers: o.numLayers, bidirectional: d.bidirectional, pooling: d.pooling, dropout: d.dropout, maxLen: d.maxLen,
      truncate: d.truncate === 'none' ? false : d.truncate, batchSize: o.batchSize, seed: o.seed,
    }, { train: unambiguous(r.data.names!.train), val: unambiguous(r.data.names!.val) });
    return { kind: r.kind, task: built.task, train: built.train, val: built.val, trainer: null, running: null, metric: 'loss' };
  }
  if (r.kind === 'namegen') {
    const d = defaults('namegen');
    const conv = (list: [string, number][]) => list.map(([name, label]) => ({ name, label }));
    const built = buildNameGen('namegen', r.data.labels!, {
      cell: o.cell, embeddingDim: d.embeddingDim, conditionDim: d.conditionDim, hiddenSize: o.hiddenSize, numLayers: o.numLayers, dropout: d.dropout,
      maxLen: d.maxLen, temperature: d.temperature, batchSize: o.batchSize, seed: o.seed,
    }, { train: conv(r.data.names!.train), val: conv(r.data.names!.val) });
    return { kind: r.kind, task: built.task, train: built.train, val: built.val, trainer: null, running: null, metric: 'nll' };
  }
  if (r.kind === 'caption') {
    const built = buildCaption({ hiddenSize: o.hiddenSize, batchSize: o.batchSize, trainSize: 4000, valSize: 100, testSize: 100, seed: o.seed });
    return { kind: r.kind, task: built.task, train: built.train, val: built.val, trainer: null, running: null, metric: 'loss' };
  }
  throw new TypeError(`unknown section ${JSON.stringify(r.kind)}`);
}

// ---- training ----------------------------------------------------------------------------------------

/** Start (or continue) training; resolves when training pauses. */
function start(s: Session, o: { lr: number; clipNorm: number; evalEvery: number }): void {
  if (s.running) return;
  if (!s.trainer) {
    let windowStart = performance.now(), windowCount = 0, tokensPerSec = 0;
    s.trainer = new Trainer(s.task, {
      optimizer: 'adam', lr: o.lr, clipNorm: o.clipNorm, epochs: 1_000_000, evalEvery: o.evalEvery, seed: 1,
      // the Trainer's warnings (persistent clipping, a loss spike) go to the page, not the console
      log: (message) => post({ type: 'log', message }),
      callbacks: [{
        onStepEnd(info: StepInfo) {
          windowCount += info.count;
          const now = performance.now();
          if (now - windowStart > 500) {
            tokensPerSec = (windowCount * 1000) / (now - windowStart);
            windowStart = now;
            windowCount = 0;
          }
          post({ type: 'step', step: info.step, loss: info.loss, gradNorm: info.gradNorm, clipped: info.clipped, tokensPerSec });
        },
        onEvalEnd(info) {
          const m = info.metrics[s.metric] ?? info.value;
          post({ type: 'eval', step: info.step, loss: m, metrics: info.metrics });
        },
      }],
    });
  }
  const trainer = s.trainer;
  post({ type: 'state', running: true });
  // on WebGPU the default backend is WebGPU while the fit runs: the task's steps make tensors there
  if (onGpu) setBackend('webgpu');
  s.running = trainer
    .fit(s.train!, s.val ?? undefined)
    .then(() => undefined, (e: Error) => post({ type: 'log', message: `training stopped: ${e.message}`, error: true }))
    .finally(() => {
      setBackend('wasm');
      s.running = null;
      post({ type: 'state', running: false, step: trainer.step });
    });
}

async function pause(s: Session): Promise<number> {
  if (s.running) {
    s.trainer!.stop('paused');
    await s.running;
  }
  return s.trainer?.step ?? 0;
}

// ---- what the sections show -------------------------------------------------------------------------

function needSession(kind?: SectionKind): Session {
  if (!session) throw new Error('build the model first (press Start)');
  if (kind && session.kind !== kind) throw new Error(`this worker holds a ${session.kind} model, not ${kind}`);
  return session;
}

function sampleText(task: LMTask, prime: string, length: number, temperature: number, seed: number): string {
  return task.model.generate({ prime: prime.length ? prime : '\n', length, temperature, rng: new Rng(seed), vocab: task.vocab });
}

/** Hidden state and gates of layer 0 over `text` (at most 200 characters). */
function inspect(task: LMTask, text: string) {
  const chars = [...text].slice(0, 200);
  const ids = task.vocab.encode(chars.join(''));
  const tr = noGrad(() => traceCharLM(task.model, ids));
  const pack = (rows: Float64Array[]) => rows.map((r) => Array.from(r));
  return { cell: tr.cell, chars, h: pack(tr.h), gates: Object.entries(tr.gates).map(([name, rows]) => ({ name, rows: pack(rows) })) };
}

/** The adding problem at one lag: ‖∂L/∂h_t‖ for RNN, LSTM and GRU at initialisation and after training (`recur diagnose`'s measurement). */
function diagnose(o: { lag: number; steps: number; hiddenSize: number }) {
  const r = runDiagnose({ lags: [o.lag], steps: o.steps, hiddenSize: o.hiddenSize, evalSize: 256, gradBatch: 32, curveEvery: Math.max(1, Math.floor(o.steps / 20)) });
  return r.runs.map((run) => ({ cell: run.cell, gradInit: run.gradInit, gradFinal: run.gradFinal, mse: run.mse, mseInit: run.mseInit, curve: run.curve }));
}

/** Exploding gradients: a vanilla RNN on the adding problem at a large learning rate, gradient-norm clipping off and on. */
async function explode(o: { lag: number; steps: number; lr: number; clip: number; cell: DiagnoseCell }) {
  const out: { clip: number; gradNorm: number[]; loss: number[] }[] = [];
  for (const clip of [0, o.clip]) {
    const net = new AddingNet(o.cell, 32, new Rng(7));
    const dataRng = new Rng(11);
    const gradNorm: number[] = [], loss: number[] = [];
    const task: Task<ReturnType<typeof addingBatch>> = {
      name: 'explode', model: net, higherIsBetter: false,
      step: (b) => ({ loss: net.loss(b), count: b.B }),
      evaluate: () => ({ mse: 0 }),
      describe: () => ({ config: {} }),
    };
    const trainer = new Trainer(task, {
      optimizer: 'sgd', lr: o.lr, clipNorm: clip, maxSteps: o.steps, log: () => {},
      callbacks: [{ onStepEnd: (i: StepInfo) => { gradNorm.push(i.gradNorm); loss.push(i.loss); } }],
    });
    // a diverging run is part of the lesson: a NaN loss ends it, and the chart shows where
    await trainer.fit({ numBatches: o.steps, get: () => addingBatch(dataRng, o.lag, 32) }).catch(() => undefined);
    out.push({ clip, gradNorm, loss });
  }
  return out;
}

/** Open a model file: a recur safetensors model (any registry task) or an ONNX model. */
function open(name: string, bytes: Uint8Array) {
  const isOnnx = /\.onnx$/i.test(name);
  if (isOnnx) {
    const model = loadOnnx(bytes);
    opened = { kind: 'onnx', model };
    return { kind: 'onnx' as const, inputs: model.inputs.map((i) => ({ name: i.name, shape: i.shape, dtype: i.dtype })), outputs: model.outputs.map((o) => o.name) };
  }
  let file;
  try {
    file = decodeModel(bytes);
  } catch (e) {
    // the CLI's wording: '<file>: <what is wrong>'
    throw new Error(`${name}: ${(e as Error).message}`);
  }
  const taskName = taskNameOf(file.config) ?? (typeof file.metadata?.['recur.task'] === 'string' ? file.metadata['recur.task'] : null);
  if (!taskName) throw new Error(`${name}: this model file does not say which task it is for (no 'task' in its config)`);
  let task;
  try {
    task = getTaskSpec(taskName).load(file, name).task;
  } catch (e) {
    const m = (e as Error).message;
    throw new Error(m.startsWith(name) ? m : `${name}: ${m}`);
  }
  opened = { kind: 'task', name: taskName, task };
  return { kind: 'task' as const, task: taskName, config: file.config };
}

function runOpened(input: string): { output: string; probabilities?: { label: string; p: number }[] } {
  if (!opened) throw new Error('open a model file first');
  if (opened.kind === 'onnx') {
    const model = opened.model;
    // the input box holds JSON: {"name": {"shape": [...], "data": [...]}}, or for the first input a flat array
    let parsed: unknown;
    try {
      parsed = JSON.parse(input);
    } catch {
      throw new Error('the input of an ONNX model is JSON: a flat array of numbers, or {"input name": {"shape": [...], "data": [...]}}');
    }
    const feeds: Record<string, OnnxInput> = {};
    if (Array.isArray(parsed)) {
      const first = model.inputs[0];
      const dims = (first.shape ?? [parsed.length]).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
      const known = dims.reduce((a, b) => a * b, 1);
      // one unknown dimension takes up the rest of the data
      const free = (first.shape ?? []).findIndex((d) => !(typeof d === 'number' && d > 0));
      if (free >= 0 && known > 0) dims[free] = parsed.length / known;
      feeds[first.name] = { shape: dims, data: parsed as number[], dtype: first.dtype };
    } else Object.assign(feeds, parsed as object);
    const outs = model.run(feeds);
    const lines = Object.entries(outs).map(([k, v]) => `${k} [${v.shape.join(', ')}]: ${Array.from(v.data.subarray(0, 32), (x) => Number(x.toPrecision(6))).join(', ')}${v.data.length > 32 ? ', …' : ''}`);
    return { output: lines.join('\n') };
  }
  const { task, name } = opened;
  const out = getTaskSpec(name).predict(task, [input])[0];
  if (task instanceof ClassificationTask) {
    const p = classifierProbabilities(task, [input])[0];
    return { output: out, probabilities: task.config.labels.map((label, k) => ({ label, p: p[k] })) };
  }
  return { output: out };
}

// ---- the message loop ---------------------------------------------------------------------------------

async function handle(m: Request): Promise<unknown> {
  switch (m.type) {
    case 'init':
      return init(m.threads, m.webgpu);
    case 'build': {
      if (session) await pause(session);
      session = onModelBackend(() => build(m));
      return { params: session.task.model.parameters().reduce((n, p) => n + p.size, 0) };
    }
    case 'start':
      start(needSession(), m);
      return null;
    case 'pause':
      return pause(needSession());
    case 'sample': {
      const s = needSession('charlm');
      return onHost(s, () => noGrad(() => sampleText(s.task as LMTask, m.prime, m.length, m.temperature, m.seed)));
    }
    case 'inspect': {
      const s = needSession('charlm');
      return onHost(s, () => inspect(s.task as LMTask, m.text));
    }
    case 'classify': {
      const s = needSession('names');
      const task = s.task as ClassificationTask;
      return onHost(s, () => {
        const p = classifierProbabilities(task, [m.text])[0];
        return task.config.labels.map((label, k) => ({ label, p: p[k] }));
      });
    }
    case 'generate': {
      const s = needSession('namegen');
      const task = s.task as NameGenTask;
      return onHost(s, () => task.sampleNames(Array.from({ length: m.count }, () => m.condition), { temperature: m.temperature, rng: new Rng(m.seed) }));
    }
    case 'caption': {
      const s = needSession('caption');
      const task = s.task as CaptionTask;
      const S = task.model.config.imageSize;
      return onHost(s, () => m.indices.map((index) => {
        const sample = shapeSample(m.seed, index, { size: S });
        return { image: Array.from(sample.image), size: S, truth: sample.caption, predicted: task.predictImages([sample.image])[0] };
      }));
    }
    case 'download': {
      const s = needSession();
      if (s.running) throw new Error('pause training before downloading');
      const bytes = await onHost(s, () => encodeTask(s.task));
      return { bytes, name: `${taskNameOf(s.task.describe().config) ?? s.task.name}.safetensors` };
    }
    case 'diagnose':
      return diagnose(m);
    case 'explode':
      return explode(m);
    case 'open':
      return open(m.name, m.bytes);
    case 'run':
      return runOpened(m.input);
    default:
      throw new TypeError(`unknown request ${JSON.stringify((m as { type: unknown }).type)}`);
  }
}

self.addEventListener('message', (e: MessageEvent<Request>) => {
  const m = e.data;
  handle(m).then(
    (result) => post({ id: m.id, ok: true, result }),
    (err: unknown) => post({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});

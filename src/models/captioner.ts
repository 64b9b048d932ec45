/**
 * caption: the one-to-many topology — one image in, a sequence of words out — on the seeded
 * shapes images of models/shapes.ts ("a red circle left of a blue square").
 *
 * Model (Show and Tell, Vinyals et al. 2015, scaled down):
 *   encoder: Conv2d(3→C1, 3, pad 1) → ReLU → MaxPool 2 → Conv2d(C1→C2, 3, pad 1) → ReLU → MaxPool 2
 *            → flatten (spatial layout kept: left/right/above matter) → h₀ = tanh(W_img · f + b)
 *   decoder: LSTM(E + H, H) over [Embedding(w_{t−1}) ; h₀] (the image features fed with every word,
 *            as in m-RNN, Mao et al. 2015 — the decoder cannot drift away from the image), started
 *            from (h₀, c₀ = 0) → Linear(H, V)
 *   training: teacher forcing, the whole caption through the fused LSTM in one op;
 *   inference: greedy or beam search (infer/beam.ts), one LSTM step per word.
 *
 * Metrics on held-out generated images: exact match (the decoded caption equals the reference)
 * and token accuracy (position-wise agreement over the reference tokens and its end token).
 */
import { z } from 'zod';
import type { DType } from '../backend/interface.ts';
import { Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { add, relu, tanh } from '../autograd/ops/elementwise.ts';
import { crossEntropy, embedding, logSoftmax } from '../autograd/ops/nn.ts';
import { concat, reshape } from '../autograd/ops/shape.ts';
import { Module, checkPositiveInt, withEval } from '../nn/module.ts';
import { Embedding, Linear } from '../nn/layers.ts';
import { Conv2d, MaxPool2d } from '../nn/conv.ts';
import { LSTM } from '../nn/recurrent.ts';
import { beamSearch, greedyDecode, type DecoderSpec } from '../infer/beam.ts';
import { writeDecoderTargets } from '../data/batch.ts';
import type { BatchSource, StepResult, Task } from '../train/task.ts';
import { asStateDict, type ModelFile } from '../io/model.ts';
import { checkModelTensors, conv2dShapes, embeddingShapes, linearShapes, makeSpec, optionSet, parseConfig, recurrentShapes, TaskConfigError, withoutTask, type ParamShapes, type TaskSpec } from './task-options.ts';
import type { Limits } from '../io/limits.ts';
import { arch, FIELDS, int, pick } from './fields.ts';
import type { SameKeys } from '../util/schema.ts';
import { SequenceScores } from './metrics.ts';
import { decodeAndScore } from './common.ts';
import { CAPTION_VOCAB, decodeCaption, encodeCaption, shapeSample, type ShapesOptions } from './shapes.ts';

export const CAP_PAD = 0;
export const CAP_BOS = 1;
export const CAP_EOS = 2;
const IGNORE = -100;

// ---- data -----------------------------------------------------------------------------------------

export interface CaptionBatch {
  B: number;
  /** Image side. */
  size: number;
  /** [B, 3, size, size] */
  images: Float32Array;
  /** Decoder positions: longest caption + 1. */
  T: number;
  /** [T, B] BOS, w₁ … w_n, PAD… */
  tgtIn: Int32Array;
  /** [T, B] w₁ … w_n, EOS, IGNORE… */
  tgtOut: Int32Array;
  tokens: number;
  /** Reference token ids (no BOS/EOS) and text. */
  refs: number[][];
  captions: string[];
}

export function makeCaptionBatch(samples: readonly { image: Float32Array; caption: string }[], size: number): CaptionBatch {
  const B = samples.length;
  if (B === 0) throw new RangeError('makeCaptionBatch: empty batch');
  const refs = samples.map((s) => encodeCaption(s.caption));
  const T = Math.max(...refs.map((r) => r.length)) + 1;
  const px = 3 * size * size;
  const images = new Float32Array(B * px);
  const tgtIn = new Int32Array(T * B);
  const tgtOut = new Int32Array(T * B).fill(IGNORE);
  let tokens = 0;
  samples.forEach((s, b) => {
    if (s.image.length !== px) throw new RangeError(`makeCaptionBatch: image ${b} has ${s.image.length} values, expected 3·${size}·${size}`);
    images.set(s.image, b * px);
    tokens += writeDecoderTargets(tgtIn, tgtOut, B, b, refs[b], CAP_BOS, CAP_EOS);
  });
  return { B, size, images, T, tgtIn, tgtOut, tokens, refs, captions: samples.map((s) => s.caption) };
}

/**
 * `count` generated images of the dataset with seed `seed`, in batches. With `shuffle`, each
 * epoch visits them in an order drawn from (seed, epoch); otherwise in index order.
 */
export class ShapesBatches implements BatchSource<CaptionBatch> {
  readonly numBatches: number;
  readonly size: number;
  private permCache: { epoch: number; perm: number[] } | null = null;

  constructor(readonly seed: number, readonly count: number, readonly batchSize: number, readonly shuffle: boolean, readonly shapes: ShapesOptions = {}) {
    checkPositiveInt('ShapesBatches', 'count', count);
    checkPositiveInt('ShapesBatches', 'batchSize', batchSize);
    this.size = shapes.size ?? 24;
    this.numBatches = Math.ceil(count / batchSize);
  }

  private perm(epoch: number): number[] {
    if (this.permCache?.epoch !== epoch) {
      const idx = [...Array(this.count).keys()];
      this.permCache = { epoch, perm: this.shuffle ? new Rng((this.seed * 2654435761 + epoch * 40503 + 1) >>> 0).shuffle(idx) : idx };
    }
    return this.permCache.perm;
  }

  get(epoch: number, index: number): CaptionBatch {
    if (!Number.isInteger(index) || index < 0 || index >= this.numBatches) throw new RangeError(`ShapesBatches.get: index ${index} is outside [0, ${this.numBatches})`);
    const ids = this.perm(epoch).slice(index * this.batchSize, (index + 1) * this.batchSize);
    return makeCaptionBatch(ids.map((i) => shapeSample(this.seed, i, this.shapes)), this.size);
  }
}

// ---- model ----------------------------------------------------------------------------------------

export interface CaptionerConfig {
  arch: 'captioner';
  imageSize: number;
  vocabSize: number;
  channels: [number, number];
  embeddingDim: number;
  hiddenSize: number;
}

/**
 * Largest image side a stored config may ask for. The captioner draws its own synthetic images of
 * this side (3·side² values each) and its image projection grows with side², so a config must not
 * be able to ask for a gigapixel image; 1024 is four times the largest the task options allow.
 */
const MAX_IMAGE_SIZE = 1024;

/** An image side: a multiple of 4 (two 2×2 poolings) in [min, max]. */
const imageSide = (min: number, max: number) => {
  const expected = `a multiple of 4 (two 2×2 poolings) in [${min}, ${max}]`;
  return z.int({ error: expected }).min(min, { error: expected }).max(max, { error: expected }).multipleOf(4, { error: expected }).meta({ expected });
};

/** The captioner's own keys (the shared ones are in models/fields.ts). */
const CAPTION_FIELDS = {
  ...FIELDS,
  imageSize: imageSide(16, 256).describe('image side in pixels'),
  channels1: int(1, { limit: 'hiddenSize' }).describe('channels of the first convolution'),
  channels2: int(1, { limit: 'hiddenSize' }).describe('channels of the second convolution'),
  trainSize: int(1).describe('generated training images (a fixed set, reshuffled every epoch)'),
  dataSeed: int(0).describe('generator seed: train uses it, validation +1, test +2'),
};

/** What `recur.config` of a captioner holds; each convolution's channel count is a layer width. */
const captionerConfig = z.strictObject({
  arch: arch('captioner'),
  imageSize: imageSide(4, MAX_IMAGE_SIZE),
  ...pick('vocabSize', 'embeddingDim', 'hiddenSize'),
  channels: z.tuple([CAPTION_FIELDS.channels1, CAPTION_FIELDS.channels2], { error: 'two positive integers' }).meta({ expected: 'two positive integers', limit: 'hiddenSize' }),
}) satisfies z.ZodType<CaptionerConfig>;
const configTypesMatch: SameKeys<CaptionerConfig, z.output<typeof captionerConfig>> = true;

/**
 * Check a captioner config (`task`, when present, must be 'caption'). With `limits` (loading a
 * file), sizes are checked against them too. Errors are TaskConfigErrors.
 */
export function checkCaptionerConfig(config: unknown, limits: Partial<Limits> | null = null): CaptionerConfig {
  return parseConfig('captioner config', captionerConfig, withoutTask(config, 'caption', 'captioner config'), { limits });
}

/** The parameters (names and shapes) a captioner config implies. */
export function captionerTensorShapes(c: CaptionerConfig): ParamShapes {
  const [c1, c2] = c.channels;
  const side = c.imageSize / 4;
  return [
    ...conv2dShapes('conv1', 3, c1, 3),
    ...conv2dShapes('conv2', c1, c2, 3),
    ...linearShapes('img_proj', c2 * side * side, c.hiddenSize),
    ...embeddingShapes('embedding', c.vocabSize, c.embeddingDim),
    ...recurrentShapes('lstm', 'lstm', c.embeddingDim + c.hiddenSize, c.hiddenSize, 1, false),
    ...linearShapes('head', c.hiddenSize, c.vocabSize),
  ];
}

interface CaptionState {
  /** [1, N, H] each */
  h: Tensor;
  c: Tensor;
  /** [N, H] the image feature vector, fed with every word */
  img: Tensor;
}

export class Captioner extends Module {
  readonly config: CaptionerConfig;
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly pool = new MaxPool2d(2);
  readonly imgProj: Linear;
  readonly embedding: Embedding;
  readonly lstm: LSTM;
  readonly head: Linear;

  constructor(config: Omit<CaptionerConfig, 'arch'> & { arch?: 'captioner' }, opts: { dtype?: DType; rng?: Rng } = {}) {
    super();
    const c = (this.config = checkCaptionerConfig({ ...config, arch: 'captioner' }));
    const rng = opts.rng ?? new Rng(0);
    const dtype = opts.dtype;
    const [c1, c2] = c.channels;
    this.conv1 = this.registerModule('conv1', new Conv2d(3, c1, 3, { padding: 1, dtype, rng }));
    this.conv2 = this.registerModule('conv2', new Conv2d(c1, c2, 3, { padding: 1, dtype, rng }));
    const side = c.imageSize / 4;
    this.imgProj = this.registerModule('img_proj', new Linear(c2 * side * side, c.hiddenSize, { dtype, rng }));
    this.embedding = this.registerModule('embedding', new Embedding(c.vocabSize, c.embeddingDim, { paddingIdx: CAP_PAD, dtype, rng }));
    // input: [word embedding ; image features] at every step (the image also sets h₀)
    this.lstm = this.registerModule('lstm', new LSTM({ inputSize: c.embeddingDim + c.hiddenSize, hiddenSize: c.hiddenSize, dtype, rng }));
    this.head = this.registerModule('head', new Linear(c.hiddenSize, c.vocabSize, { dtype, rng }));
  }

  /** images [B, 3, S, S] (host values) → initial decoder state (h₀ = image features, c₀ = 0). */
  encode(images: Float32Array, B: number): CaptionState {
    const S = this.config.imageSize;
    if (images.length !== B * 3 * S * S) throw new RangeError(`Captioner.encode: ${images.length} values do not fill [${B}, 3, ${S}, ${S}]`);
    const p = this.conv1.weight;
    const x = new Tensor(p.backend.fromArray(images, p.dtype), [B, 3, S, S]);
    const f1 = this.pool.forward(relu(this.conv1.forward(x)));
    const f2 = this.pool.forward(relu(this.conv2.forward(f1)));
    const h = tanh(this.imgProj.forward(reshape(f2, [B, -1])));
    const H = this.config.hiddenSize;
    return { h: reshape(h, [1, B, H]), c: new Tensor(p.backend.alloc(B * H, p.dtype), [1, B, H]), img: h };
  }

  /** Teacher-forced logits [T·B, V]. */
  forward(batch: CaptionBatch): Tensor {
    const s = this.encode(batch.images, batch.B);
    const { T, B } = batch;
    const H = this.config.hiddenSize;
    const e = this.embedding.forward(batch.tgtIn, [T, B]);
    // the image features repeated over the T steps (a broadcast add onto zeros)
    const zeros = new Tensor(s.img.backend.alloc(T * B * H, s.img.dtype), [T, B, H]);
    const r = this.lstm.forward(concat([e, add(zeros, reshape(s.img, [1, B, H]))], 2), { h: s.h, c: s.c });
    return this.head.forward(reshape(r.output, [batch.T * batch.B, this.config.hiddenSize]));
  }

  loss(batch: CaptionBatch): Tensor {
    return crossEntropy(this.forward(batch), batch.tgtOut, { ignoreIndex: IGNORE });
  }

  /** Caption token ids (no BOS/EOS) for each image; beamWidth 1 is greedy. */
  decode(images: Float32Array, B: number, o: { beamWidth?: number; maxLength?: number } = {}): number[][] {
    const beamWidth = o.beamWidth ?? 1;
    return withEval(this, () => {
      const H = this.config.hiddenSize;
      const V = this.config.vocabSize;
      const spec: DecoderSpec<CaptionState> = {
        batchSize: B, vocabSize: V, startToken: CAP_BOS, stopToken: CAP_EOS, maxLength: o.maxLength ?? 12,
        initialState: this.encode(images, B),
        step: (tokens, state) => {
          const N = tokens.length;
          const x = concat([this.embedding.forward(tokens, [1, N]), reshape(state.img, [1, N, H])], 2);
          const r = this.lstm.forward(x, { h: state.h, c: state.c });
          const lp = logSoftmax(this.head.forward(reshape(r.output, [N, H]))).toArray();
          for (let i = 0; i < N; i++) {
            lp[i * V + CAP_PAD] = -Infinity;
            lp[i * V + CAP_BOS] = -Infinity;
          }
          return { logProbs: lp, state: { h: r.h, c: r.c!, img: state.img } };
        },
        select: (state, rows) => ({
          h: reshape(embedding(reshape(state.h, [-1, H]), rows, [rows.length]), [1, rows.length, H]),
          c: reshape(embedding(reshape(state.c, [-1, H]), rows, [rows.length]), [1, rows.length, H]),
          img: embedding(state.img, rows, [rows.length]),
        }),
      };
      if (beamWidth === 1) return greedyDecode(spec).map((h) => h.tokens);
      return beamSearch(spec, { beamWidth, numReturn: 1 }).map((hs) => hs[0]?.tokens ?? []);
    });
  }
}

// ---- metrics and task -----------------------------------------------------------------------------

/** Exact match and position-wise token accuracy of captions (over each reference and its end token). */
export class CaptionScores extends SequenceScores {
  constructor() {
    super(CAP_EOS);
  }
}

export class CaptionTask implements Task<CaptionBatch> {
  readonly name = 'caption';
  readonly higherIsBetter = true;
  beamWidth = 1;

  constructor(readonly model: Captioner) {}

  step(batch: CaptionBatch): StepResult {
    return { loss: this.model.loss(batch), count: batch.B };
  }

  /** { exactMatch, tokenAccuracy, loss } over the data. */
  evaluate(data: BatchSource<CaptionBatch>): Record<string, number> {
    const scores = new CaptionScores();
    const loss = decodeAndScore(this.model, data, (b) => this.model.decode(b.images, b.B, { beamWidth: this.beamWidth }), (p, ref) => scores.add(p, ref));
    return { exactMatch: scores.exactMatch, tokenAccuracy: scores.tokenAccuracy, loss };
  }

  /** The model config plus `task: 'caption'` (so a model file names its task), and the vocabulary. */
  describe(): { config: CaptionerConfig & { task: 'caption' }; vocab: string[] } {
    return { config: { ...this.model.config, task: 'caption' }, vocab: [...CAPTION_VOCAB] };
  }

  /** Captions for images given as flat [3, S, S] arrays. */
  predictImages(images: readonly Float32Array[]): string[] {
    if (images.length === 0) return [];
    const S = this.model.config.imageSize;
    const flat = new Float32Array(images.length * 3 * S * S);
    images.forEach((im, i) => {
      if (im.length !== 3 * S * S) throw new RangeError(`caption predict: image ${i} has ${im.length} values, expected 3·${S}·${S}`);
      flat.set(im, i * 3 * S * S);
    });
    return this.model.decode(flat, images.length, { beamWidth: this.beamWidth }).map(decodeCaption);
  }
}

// ---- building, loading, the registry spec ---------------------------------------------------------

/**
 * Every option of a caption task with its default, declared once: buildCaption and the registry
 * entry both parse their options with it. The seeds are named as in every other task and in the
 * Trainer: `seed` seeds the model's initialisation, `dataSeed` the image generator (train uses it,
 * validation +1, test +2) and the order of the training images. The library builder used to call
 * them `modelSeed` and `seed`, and take `channels` as a pair; the registry's names are kept because
 * `recur train` stores a run's task options under them in its checkpoint, which `--resume` and
 * `recur eval` read back from old run directories.
 */
const CAPTION_OPTIONS = optionSet(CAPTION_FIELDS, {
  imageSize: 24, channels1: 16, channels2: 32, embeddingDim: 32, hiddenSize: 96, trainSize: 20000, valSize: 500, testSize: 1000,
  dataSeed: 1, beamWidth: 1, epochs: 5, lr: 0.003, weightDecay: 0, clipNorm: 5, batchSize: 32, seed: 1,
});

/** The value of every option (epochs, lr and clipNorm are for the Trainer: `trainDefaults`). */
export type CaptionSettings = typeof CAPTION_OPTIONS.defaults;
/** The options of buildCaption: any of the settings, the others from CAPTION_DEFAULTS. */
export interface CaptionOptions extends Partial<CaptionSettings> {}
export const CAPTION_DEFAULTS: Readonly<CaptionSettings> = CAPTION_OPTIONS.defaults;

/** The task and its generated data; the options are checked (and strings read as numbers) as the registry's are. */
export function buildCaption(options: CaptionOptions = {}): { task: CaptionTask; train: ShapesBatches; val: ShapesBatches; test: ShapesBatches } {
  return captionFrom(CAPTION_OPTIONS.parse('caption', options));
}

function captionFrom(o: CaptionSettings): ReturnType<typeof buildCaption> {
  const model = new Captioner({ imageSize: o.imageSize, vocabSize: CAPTION_VOCAB.length, channels: [o.channels1, o.channels2], embeddingDim: o.embeddingDim, hiddenSize: o.hiddenSize }, { rng: new Rng(o.seed) });
  const task = new CaptionTask(model);
  task.beamWidth = o.beamWidth;
  const shapes = { size: o.imageSize };
  return {
    task,
    train: new ShapesBatches(o.dataSeed, o.trainSize, o.batchSize, true, shapes),
    val: new ShapesBatches(o.dataSeed + 1, o.valSize, 100, false, shapes),
    test: new ShapesBatches(o.dataSeed + 2, o.testSize, 100, false, shapes),
  };
}

/**
 * Rebuild the task from a decoded model file: the config (types, ranges, limits), the vocabulary
 * and the tensors (exactly those the config implies) are checked before the model is built.
 */
export function loadCaption(file: ModelFile, path = 'model file', opts: { limits?: Partial<Limits> } = {}): { task: CaptionTask } {
  const limits = opts.limits ?? {};
  const config = checkCaptionerConfig(file.config, limits);
  const vocab = file.vocab;
  if (!Array.isArray(vocab) || vocab.length !== CAPTION_VOCAB.length || vocab.some((w, i) => w !== CAPTION_VOCAB[i])) throw new TaskConfigError(`${path}: the caption vocabulary in the file differs from this version's`);
  checkModelTensors(path, captionerTensorShapes(config), file.tensors, { limits, error: TaskConfigError });
  const model = new Captioner(config);
  model.loadStateDict(asStateDict(file));
  return { task: new CaptionTask(model) };
}

/**
 * The registry entry (models/registry.ts TaskSpec). Inputs for `predict` are generator addresses
 * "SEED:INDEX" (the generator is the image source here): the caption of that generated image.
 */
export const captionTaskSpec: TaskSpec = makeSpec({
  name: 'caption',
  description: 'image captioning on seeded generated shapes ("a red circle left of a blue square"): small CNN encoder + LSTM decoder; exact match and token accuracy',
  topology: 'one-to-many',
  options: CAPTION_OPTIONS,
  build: captionFrom,
  load(file, where, o) {
    const { task } = loadCaption(file, where ?? 'model file');
    if (o) task.beamWidth = o.beamWidth;
    return { task };
  },
  predict(task, inputs) {
    if (!(task instanceof CaptionTask)) throw new TypeError(`caption: predict needs a task built or loaded by 'caption', got task '${task?.name ?? String(task)}'`);
    const S = task.model.config.imageSize;
    const images = inputs.map((s) => {
      const m = /^(\d+):(\d+)$/.exec(String(s).trim());
      if (!m) throw new RangeError(`caption: predict input '${s}' must be SEED:INDEX (a generated image)`);
      return shapeSample(Number(m[1]), Number(m[2]), { size: S }).image;
    });
    return task.predictImages(images);
  },
});

/**
 * Batching: padding with per-sample lengths, bucketing by length, seeded shuffling, and the
 * `BatchSource` implementations the tasks hand to the Trainer (train/task.ts).
 *
 * Promises:
 * - Padding never truncates silently. A sequence longer than `maxLen` is a `SequenceLengthError`
 *   naming the sample and its length, unless the caller asks for truncation (`truncate: 'end'`
 *   keeps the first maxLen tokens, `'start'` keeps the last maxLen).
 * - Padded batches are time-major by default (`ids[t·B + b]`), as the recurrent layers expect;
 *   `lengths[b]` is sample b's real length, and every position t ≥ lengths[b] holds `padId`.
 * - Every random choice comes from an `Rng` seeded from (source seed, epoch[, index]) — never from
 *   global state — so `get(epoch, index)` returns the same batch however often and in whatever
 *   order it is asked, which is what lets a resumed run see exactly the batches of an
 *   uninterrupted one.
 */
import { deriveSeed, Rng } from '../tensor/rng.ts';
import type { BatchSource } from '../train/task.ts';

export class SequenceLengthError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'SequenceLengthError';
  }
}

export type TruncateMode = false | 'end' | 'start';

function truncMode(where: string, t: unknown): TruncateMode {
  if (t === undefined || t === false || t === 'none') return false;
  if (t === true || t === 'end') return 'end';
  if (t === 'start') return 'start';
  throw new TypeError(`${where}: truncate must be false, true/'end' (keep the first maxLen) or 'start' (keep the last maxLen), got ${JSON.stringify(t)}`);
}

/**
 * One sequence cut to at most maxLen tokens: an error (naming `what`) unless `truncate` says which
 * end to drop.
 */
export function fitLength<T extends ArrayLike<number> | readonly unknown[]>(seq: T, maxLen: number, truncate: boolean | TruncateMode | 'none' = false, what = 'sequence'): T {
  const mode = truncMode('fitLength', truncate);
  if (!Number.isInteger(maxLen) || maxLen < 1) throw new RangeError(`fitLength: maxLen must be a positive integer, got ${maxLen}`);
  if (seq.length <= maxLen) return seq;
  if (mode === false) {
    throw new SequenceLengthError(`${what} has ${seq.length} tokens, more than the maximum ${maxLen}; pass truncate: 'end' (keep the first ${maxLen}) or 'start' (keep the last ${maxLen}) to cut it`);
  }
  const s = seq as unknown as { slice(a: number, b?: number): T };
  return mode === 'end' ? s.slice(0, maxLen) : s.slice(seq.length - maxLen);
}

export interface PadOptions {
  /** The id written past each sequence's end. */
  padId: number;
  /** Longest allowed sequence (default: no limit). The padded length T is the longest sequence (≤ maxLen). */
  maxLen?: number;
  /** What to do with a sequence longer than maxLen (default false: an error). */
  truncate?: boolean | TruncateMode | 'none';
  /** 'time' (default): ids[t·B + b]; 'batch': ids[b·T + t]. */
  major?: 'time' | 'batch';
  /** Allow zero-length sequences (default false: an error, since pooling over nothing is undefined). */
  allowEmpty?: boolean;
}

export interface PaddedBatch {
  /** [T, B] time-major (or [B, T] with major 'batch') */
  ids: Int32Array;
  /** [B] real length of each sample */
  lengths: Int32Array;
  T: number;
  B: number;
}

/** Pad sequences of ids into one rectangle plus per-sample lengths. */
export function padSequences(seqs: readonly ArrayLike<number>[], opts: PadOptions): PaddedBatch {
  if (!Array.isArray(seqs)) throw new TypeError('padSequences: expected an array of id sequences');
  if (opts === null || typeof opts !== 'object') throw new TypeError('padSequences: options {padId, maxLen?, truncate?} are required');
  for (const k of Object.keys(opts)) {
    if (!['padId', 'maxLen', 'truncate', 'major', 'allowEmpty'].includes(k)) throw new TypeError(`padSequences: unknown option '${k}' (known: padId, maxLen, truncate, major, allowEmpty)`);
  }
  if (!Number.isInteger(opts.padId)) throw new TypeError(`padSequences: padId must be an integer, got ${String(opts.padId)}`);
  if (seqs.length === 0) throw new RangeError('padSequences: no sequences to pad (empty batch)');
  const mode = truncMode('padSequences', opts.truncate);
  const maxLen = opts.maxLen ?? Infinity;
  if (maxLen !== Infinity && (!Number.isInteger(maxLen) || maxLen < 1)) throw new RangeError(`padSequences: maxLen must be a positive integer, got ${String(opts.maxLen)}`);
  const major = opts.major ?? 'time';
  if (major !== 'time' && major !== 'batch') throw new TypeError(`padSequences: major must be 'time' or 'batch', got ${JSON.stringify(major)}`);
  const B = seqs.length;
  const lengths = new Int32Array(B);
  const offsets = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const n = seqs[b].length;
    if (n === 0 && !opts.allowEmpty) throw new SequenceLengthError(`padSequences: sequence ${b} is empty (pass allowEmpty: true if that is intended)`);
    if (n > maxLen) {
      if (mode === false) throw new SequenceLengthError(`padSequences: sequence ${b} has ${n} tokens, more than maxLen ${maxLen}; pass truncate: 'end' or 'start' to cut it`);
      lengths[b] = maxLen;
      offsets[b] = mode === 'end' ? 0 : n - maxLen;
    } else {
      lengths[b] = n;
    }
  }
  let T = 0;
  for (let b = 0; b < B; b++) if (lengths[b] > T) T = lengths[b];
  T = Math.max(T, 1); // an all-empty batch still has one (padded) step
  const ids = new Int32Array(T * B).fill(opts.padId);
  for (let b = 0; b < B; b++) {
    const s = seqs[b], o = offsets[b], n = lengths[b];
    if (major === 'time') for (let t = 0; t < n; t++) ids[t * B + b] = s[o + t];
    else for (let t = 0; t < n; t++) ids[b * T + t] = s[o + t];
  }
  return { ids, lengths, T, B };
}

// ---- seeded randomness ----------------------------------------------------------------------

export { deriveSeed };

/**
 * Shards of a batch of B samples for data-parallel training (Task.shard, train/task.ts): min(parts, B)
 * contiguous ranges [b0, b1) of near-equal size (they differ by at most one), in order — a batch
 * smaller than `parts` (an epoch's last) gets one shard per sample.
 */
export function shardRanges(B: number, parts: number, what: string): [number, number][] {
  if (!Number.isInteger(parts) || parts < 1) throw new RangeError(`${what}: the number of shards must be a positive integer, got ${parts}`);
  const n = Math.min(parts, B);
  return Array.from({ length: n }, (_, m) => [Math.floor((m * B) / n), Math.floor(((m + 1) * B) / n)]);
}

/** Samples b0 … b1−1 of a time-major [T, B, inner] array, as a time-major [T, b1−b0, inner] array. */
export function takeColumns<A extends Int32Array | Float32Array | Float64Array>(a: A, T: number, B: number, b0: number, b1: number, inner = 1): A {
  const width = (b1 - b0) * inner;
  const out = new (a.constructor as new (n: number) => A)(T * width);
  for (let t = 0; t < T; t++) out.set(a.subarray((t * B + b0) * inner, (t * B + b1) * inner), t * width);
  return out;
}

/** A fresh generator for (seed, ...parts), e.g. (sourceSeed, epoch). */
export function rngFor(...parts: number[]): Rng {
  return new Rng(deriveSeed(...parts));
}

/** A seeded permutation of 0…n−1. */
export function permutation(n: number, rng: Rng): number[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`permutation: n must be a non-negative integer, got ${n}`);
  return rng.shuffle(Array.from({ length: n }, (_, i) => i));
}

/**
 * Group example indices into batches of similar length (less padding, so less wasted compute).
 * With an rng: shuffle, cut into pools of `poolBatches` batches, sort each pool by length, split
 * into batches, then shuffle the batch order — random but length-homogeneous ("sortish"). Without
 * an rng: sort everything by length (stable) and split, for deterministic evaluation.
 * `dropLast` drops a final short batch.
 */
export function bucketByLength(lengths: ArrayLike<number>, batchSize: number, opts: { rng?: Rng | null; poolBatches?: number; dropLast?: boolean } = {}): number[][] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`bucketByLength: batchSize must be a positive integer, got ${batchSize}`);
  const n = lengths.length;
  const byLen = (a: number, b: number): number => lengths[a] - lengths[b] || a - b;
  let batches: number[][] = [];
  const cut = (idx: number[]): void => {
    for (let i = 0; i < idx.length; i += batchSize) batches.push(idx.slice(i, i + batchSize));
  };
  if (!opts.rng) {
    cut(Array.from({ length: n }, (_, i) => i).sort(byLen));
  } else {
    const pool = batchSize * (opts.poolBatches ?? 50);
    const perm = permutation(n, opts.rng);
    for (let i = 0; i < n; i += pool) cut(perm.slice(i, i + pool).sort(byLen));
  }
  if (opts.dropLast) batches = batches.filter((b) => b.length === batchSize);
  if (opts.rng) opts.rng.shuffle(batches);
  return batches;
}

function checkAddress(where: string, epoch: number, index: number, numBatches: number): void {
  if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`${where}: epoch must be a non-negative integer, got ${epoch}`);
  if (!Number.isInteger(index) || index < 0 || index >= numBatches) throw new RangeError(`${where}: batch index ${index} is outside [0, ${numBatches})`);
}

export interface ExampleSourceOptions<E, B> {
  batchSize: number;
  /** Seed of this source's shuffling (ignored when shuffle is false). */
  seed?: number;
  /** Reshuffle every epoch (training) or keep one fixed order (evaluation). Default true. */
  shuffle?: boolean;
  /** Length of an example, for bucketing; without it batches are plain shuffled slices. */
  lengthOf?: (e: E) => number;
  /** Batches per sorting pool when bucketing (default 50). */
  poolBatches?: number;
  /** Drop a final short batch (default false). */
  dropLast?: boolean;
  /** Examples → one batch. */
  collate: (examples: E[]) => B;
}

/**
 * A BatchSource over a fixed list of examples: per epoch, a permutation (bucketed by length when
 * `lengthOf` is given) drawn from Rng(seed, epoch), cut into batches and collated on demand.
 */
export class ExampleSource<E, B> implements BatchSource<B> {
  readonly numBatches: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  private readonly opts: ExampleSourceOptions<E, B>;
  private cached: { epoch: number; plan: number[][] } | null = null;

  constructor(readonly examples: readonly E[], opts: ExampleSourceOptions<E, B>) {
    if (!Array.isArray(examples)) throw new TypeError('ExampleSource: examples must be an array');
    if (examples.length === 0) throw new RangeError('ExampleSource: no examples (is the data set or split empty?)');
    for (const k of Object.keys(opts)) {
      if (!['batchSize', 'seed', 'shuffle', 'lengthOf', 'poolBatches', 'dropLast', 'collate'].includes(k)) throw new TypeError(`ExampleSource: unknown option '${k}'`);
    }
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`ExampleSource: batchSize must be a positive integer, got ${String(opts.batchSize)}`);
    if (typeof opts.collate !== 'function') throw new TypeError('ExampleSource: collate must be a function');
    this.opts = opts;
    this.batchSize = opts.batchSize;
    this.seed = opts.seed ?? 0;
    this.shuffle = opts.shuffle ?? true;
    const n = examples.length;
    this.numBatches = opts.dropLast ? Math.floor(n / opts.batchSize) : Math.ceil(n / opts.batchSize);
    if (this.numBatches === 0) throw new RangeError(`ExampleSource: ${n} examples make no full batch of ${opts.batchSize} (dropLast)`);
  }

  /** The batches of one epoch, as lists of example indices. */
  plan(epoch: number): number[][] {
    const key = this.shuffle ? epoch : 0;
    if (this.cached && this.cached.epoch === key) return this.cached.plan;
    const { lengthOf, dropLast, poolBatches } = this.opts;
    const n = this.examples.length;
    const rng = this.shuffle ? rngFor(this.seed, key) : null;
    let plan: number[][];
    if (lengthOf) {
      const lengths = this.examples.map(lengthOf);
      plan = bucketByLength(lengths, this.batchSize, { rng, poolBatches, dropLast });
    } else {
      const order = rng ? permutation(n, rng) : Array.from({ length: n }, (_, i) => i);
      plan = [];
      for (let i = 0; i + (dropLast ? this.batchSize : 1) <= n; i += this.batchSize) plan.push(order.slice(i, i + this.batchSize));
    }
    this.cached = { epoch: key, plan };
    return plan;
  }

  get(epoch: number, index: number): B {
    checkAddress('ExampleSource.get', epoch, index, this.numBatches);
    const idx = this.plan(epoch)[index];
    return this.opts.collate(idx.map((i) => this.examples[i]));
  }
}

/**
 * A BatchSource whose batch (epoch, index) is made by `make` from its own generator
 * Rng(seed, epoch, index) — for sources that sample (random windows of a long text or series).
 */
export class SampledSource<B> implements BatchSource<B> {
  constructor(readonly numBatches: number, readonly seed: number, private readonly make: (rng: Rng, epoch: number, index: number) => B) {
    if (!Number.isInteger(numBatches) || numBatches < 1) throw new RangeError(`SampledSource: numBatches must be a positive integer, got ${numBatches}`);
  }

  get(epoch: number, index: number): B {
    checkAddress('SampledSource.get', epoch, index, this.numBatches);
    return this.make(rngFor(this.seed, epoch, index), epoch, index);
  }
}

/** A BatchSource over a fixed list of ready batches (evaluation data); the epoch is ignored. */
export class ListSource<B> implements BatchSource<B> {
  readonly numBatches: number;
  constructor(readonly batches: readonly B[]) {
    if (!Array.isArray(batches) || batches.length === 0) throw new RangeError('ListSource: needs at least one batch');
    this.numBatches = batches.length;
  }

  get(epoch: number, index: number): B {
    checkAddress('ListSource.get', epoch, index, this.numBatches);
    return this.batches[index];
  }
}

/** Every batch of epoch 0 of a source, in order (for evaluation loops). */
export function* batchesOf<B>(source: BatchSource<B>, epoch = 0): Generator<B> {
  for (let i = 0; i < source.numBatches; i++) yield source.get(epoch, i);
}

/**
 * Teacher forcing, for column b of time-major [T, B] decoder batches: the decoder reads BOS then
 * the target (`tgtIn`) and learns to write the target then EOS (`tgtOut`), one step apart.
 * Returns the steps scored (the target's length + 1 for EOS).
 */
export function writeDecoderTargets(tgtIn: Int32Array, tgtOut: Int32Array, B: number, b: number, target: ArrayLike<number>, bos: number, eos: number): number {
  tgtIn[b] = bos;
  for (let t = 0; t < target.length; t++) {
    tgtIn[(t + 1) * B + b] = target[t];
    tgtOut[t * B + b] = target[t];
  }
  tgtOut[target.length * B + b] = eos;
  return target.length + 1;
}

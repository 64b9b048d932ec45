/**
 * Resource limits for untrusted input: the one place that states how much a file, a model config
 * or a data set may ask recur to read, allocate or build. Every loader (safetensors and model files,
 * Keras folders, ONNX graphs, text corpora) checks these BEFORE it allocates, so a small hostile
 * file cannot make recur take gigabytes of memory or minutes of time.
 *
 * The defaults are sized so that a laptop survives the worst file that passes them (about 1 GiB
 * of tensors at most) while every model and data set recur ships, and every model of the size
 * people train with it, passes with room to spare. A caller who trusts bigger inputs raises a
 * limit with `resolveLimits({ tensorElements: 2 ** 30 })` in the library (passed as a loader's
 * `limits` option), or `--limit tensorElements=1073741824` on the command line.
 */

export interface Limits {
  /** Bytes of one input file (a model file, a shard, an ONNX file, a corpus read whole). */
  fileBytes: number;
  /** Bytes of a file's header or JSON part (safetensors header, Keras model.json). */
  headerBytes: number;
  /** Tensors in one file. */
  tensors: number;
  /** Elements of one tensor. */
  tensorElements: number;
  /** Parameters of one model (the sum over its tensors, and what a config asks to build). */
  parameters: number;
  /** Recurrent layers a config may ask for. */
  layers: number;
  /** Hidden size (and input/embedding size) a config may ask for. */
  hiddenSize: number;
  /** Vocabulary entries. */
  vocab: number;
  /** Nodes of an ONNX graph. */
  graphNodes: number;
  /** Bytes of constants that ONNX constant folding may produce at load time. */
  foldedConstantBytes: number;
  /** Steps of one sequence (a line, a document, a time series window). */
  sequenceLength: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  fileBytes: 2 * 1024 ** 3,
  headerBytes: 100 * 1024 ** 2,
  tensors: 100_000,
  tensorElements: 2 ** 28,
  parameters: 2 ** 28,
  layers: 64,
  hiddenSize: 16_384,
  vocab: 1_000_000,
  graphNodes: 1_000_000,
  foldedConstantBytes: 256 * 1024 ** 2,
  sequenceLength: 10_000_000,
});

export const LIMIT_KEYS = Object.keys(DEFAULT_LIMITS) as (keyof Limits)[];

/** An input that asks for more than a limit allows. */
export class LimitError extends Error {
  constructor(
    readonly key: keyof Limits,
    readonly limit: number,
    readonly got: number,
    message: string,
  ) {
    super(message);
    this.name = 'LimitError';
  }
}

/**
 * What `resolveLimits` starts from in this process: DEFAULT_LIMITS unless the application raised
 * some with `setProcessLimits` (the CLI's --limit). Not part of the library's public API: a library
 * caller passes `limits` to the loader it calls, and never changes what other callers get.
 */
let processLimits: Readonly<Limits> = DEFAULT_LIMITS;

/** Start every later `resolveLimits` from DEFAULT_LIMITS with `overrides` (checked like resolveLimits'). */
export function setProcessLimits(overrides: Partial<Limits>): void {
  processLimits = DEFAULT_LIMITS;
  processLimits = Object.freeze(resolveLimits(overrides));
}

/** The process's limits (normally the defaults) with `overrides` applied; unknown keys and values that are not positive integers are refused. */
export function resolveLimits(overrides: Partial<Limits> = {}): Limits {
  const out: Limits = { ...processLimits };
  for (const [k, v] of Object.entries(overrides)) {
    if (!(LIMIT_KEYS as string[]).includes(k)) throw new TypeError(`limits: unknown limit '${k}' (known: ${LIMIT_KEYS.join(', ')})`);
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new TypeError(`limits: '${k}' must be a positive integer, got ${String(v)}`);
    out[k as keyof Limits] = v;
  }
  return out;
}

/**
 * Throw a LimitError when `got` exceeds `limits[key]`. `what` says what was counted, in the words of
 * the input ("model.json: weight shard 'group1.bin'", "layer count in recur.config").
 */
export function checkLimit(limits: Limits, key: keyof Limits, got: number, what: string): void {
  const limit = limits[key];
  if (got > limit) {
    throw new LimitError(key, limit, got, `${what}: ${got} is over the limit of ${limit} (${key}); raise it with the '${key}' limit if the input is trusted`);
  }
}

/**
 * recur model files. A model file IS a safetensors file whose tensor names and shapes equal the
 * PyTorch `state_dict()` of the equivalent PyTorch model, so `safetensors.torch.load_file(path)`
 * gives a dict that `torch_module.load_state_dict(...)` accepts, and a safetensors file saved from
 * PyTorch loads here with `loadModelInto(module, path)`.
 *
 * Beside the tensors, the header's `__metadata__` carries (all strings, as the format requires):
 *   format        "pt" (the convention PyTorch tooling expects)
 *   recur.version the writer's version
 *   recur.config  JSON: the architecture and its options, enough to rebuild the model
 *   recur.vocab   JSON: the vocabulary, when the model has one
 *   …             any user metadata
 * Optimizer state is kept out of the model file (it would break strict PyTorch loading); it goes in
 * a training checkpoint beside it.
 *
 * This module works on bytes and runs anywhere; reading and writing files by path is in
 * `files.ts` (the `recurjs/node` entry). Writes are atomic (temp file + rename). Reads validate the whole file before trusting it, and
 * loading into a module checks that exactly the names and shapes the module expects are present.
 */
import { Module, type TensorLike } from '../nn/module.ts';
import { decodeSafetensors, encodeSafetensors, SafetensorsError, type SafeTensor } from './safetensors.ts';
import { VERSION } from '../version.ts';
import { checkLimit, resolveLimits, type Limits } from './limits.ts';

export interface SaveModelOptions {
  /** Architecture description (JSON-serialisable), stored as `recur.config`. */
  config?: unknown;
  /** Vocabulary (JSON-serialisable), stored as `recur.vocab`. */
  vocab?: unknown;
  /** Extra string metadata. */
  metadata?: Record<string, string>;
}

export interface ModelFile {
  /** Tensors by PyTorch state_dict name, as host arrays. */
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
  config: unknown;
  vocab: unknown;
}

/** The parameters of a module as safetensors entries (F32 or F64, per parameter dtype). */
export function moduleTensors(module: Module): Record<string, SafeTensor> {
  const out: Record<string, SafeTensor> = {};
  for (const [name, p] of module.namedParameters()) {
    const data = p.toArray();
    out[name] = { dtype: p.dtype === 'float64' ? 'F64' : 'F32', shape: [...p.shape], data };
  }
  return out;
}

export function encodeModel(module: Module, opts: SaveModelOptions = {}): Uint8Array {
  const metadata: Record<string, string> = { format: 'pt', 'recur.version': VERSION, ...(opts.metadata ?? {}) };
  if (opts.config !== undefined) metadata['recur.config'] = JSON.stringify(opts.config);
  if (opts.vocab !== undefined) metadata['recur.vocab'] = JSON.stringify(opts.vocab);
  return encodeSafetensors(moduleTensors(module), metadata);
}

function parseJsonMeta(metadata: Record<string, string>, key: string): unknown {
  const s = metadata[key];
  if (s === undefined) return null;
  try {
    return JSON.parse(s);
  } catch (e) {
    throw new SafetensorsError(`safetensors: metadata '${key}' is not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Decode a model file from bytes; optionally check the names and shapes a module expects.
 * `opts.limits` (io/limits.ts) bound the header, the tensor count and each tensor's elements
 * (checked by the decoder before a tensor is copied out) and the model's parameters, the sum over
 * its tensors (checked after decoding: the copies are no larger than the file itself).
 */
export function decodeModel(bytes: Uint8Array, expectFor?: Module, opts: { limits?: Partial<Limits> } = {}): ModelFile {
  const limits = resolveLimits(opts.limits);
  const expect = expectFor ? Object.fromEntries(expectFor.namedParameters().map(([n, p]) => [n, [...p.shape]])) : undefined;
  const { tensors, metadata } = decodeSafetensors(bytes, expect ? { expect, limits } : { limits });
  let parameters = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) {
      throw new SafetensorsError(`safetensors: tensor '${name}' has dtype ${t.dtype}; model parameters must be floating point (F64, F32, F16 or BF16)`);
    }
    parameters += t.data.length;
  }
  checkLimit(limits, 'parameters', parameters, 'model file: parameters (the sum over its tensors)');
  return { tensors, metadata, config: parseJsonMeta(metadata, 'recur.config'), vocab: parseJsonMeta(metadata, 'recur.vocab') };
}

/** The tensors of a model file as a state dict for `Module.loadStateDict`. */
export function asStateDict(file: ModelFile): Record<string, TensorLike> {
  const sd: Record<string, TensorLike> = {};
  for (const [name, t] of Object.entries(file.tensors)) sd[name] = { shape: t.shape, data: t.data as Float32Array | Float64Array };
  return sd;
}

/** Summary for `recur info`. */
export function describeModelFile(file: ModelFile): { numParameters: number; tensors: { name: string; dtype: string; shape: number[] }[] } {
  let numParameters = 0;
  const tensors = Object.entries(file.tensors)
    .map(([name, t]) => {
      numParameters += t.data.length;
      return { name, dtype: t.dtype, shape: t.shape };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  return { numParameters, tensors };
}


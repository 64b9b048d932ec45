/**
 * Model and safetensors files by path (Node.js: node:fs). The codecs in model.ts and
 * safetensors.ts work on bytes and run anywhere; this module adds the file system, and is reached
 * through the `recurjs/node` entry only, so the core stays free of Node-only imports.
 *
 * Every read goes through `readInputFile`: the path must name a regular file (not a folder, a
 * device or a pipe, which could never end) of at most `limits.fileBytes` bytes, checked before a
 * byte is read. Every write is atomic (temp file + rename, atomic.ts).
 */
import { StateDictError, type Module } from '../nn/module.ts';
import { decodeSafetensors, encodeSafetensors, type DecodeOptions, type DecodedSafetensors, type SafeTensor } from './safetensors.ts';
import { asStateDict, decodeModel, encodeModel, type ModelFile, type SaveModelOptions } from './model.ts';
import { writeFileAtomic } from './atomic.ts';
import { readInputFile } from './read.ts';
import type { Limits } from './limits.ts';

export { readInputFile, InputFileError } from './read.ts';

/** Encode and write atomically to `path` (the old file, if any, is replaced whole). */
export function saveSafetensors(path: string, tensors: Record<string, SafeTensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Read `path` and decode it with {@link decodeSafetensors}. */
export function loadSafetensors(path: string, opts?: DecodeOptions): DecodedSafetensors {
  return decodeSafetensors(readInputFile(path, 'safetensors file'), opts);
}

/** Save a module's parameters (+ config, vocab, metadata) atomically. */
export function saveModel(path: string, module: Module, opts: SaveModelOptions = {}): void {
  writeFileAtomic(path, encodeModel(module, opts));
}

/** Read and decode a model file; optionally check the names and shapes a module expects. */
export function loadModelFile(path: string, expectFor?: Module, opts: { limits?: Partial<Limits> } = {}): ModelFile {
  return decodeModel(readInputFile(path, 'model file', opts.limits), expectFor, opts);
}

/**
 * Load a model file (recur's, or a safetensors file saved from the matching PyTorch module's
 * state_dict) into `module`: every name the module expects must be present with its shape, and
 * nothing else. Returns the file's config, vocab and metadata.
 */
export function loadModelInto(module: Module, path: string): ModelFile {
  const file = loadModelFile(path, module);
  try {
    module.loadStateDict(asStateDict(file));
  } catch (e) {
    if (e instanceof StateDictError) throw new StateDictError(`${path}: ${e.message}`);
    throw e;
  }
  return file;
}

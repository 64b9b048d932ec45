/**
 * Reading a Keras / TF.js layers model from disk: `loadKerasModel(path)` reads model.json and the
 * weight shards beside it (paths in the manifest are relative to model.json's folder).
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, isAbsolute } from 'node:path';
import { parseKerasModel, KerasImportError, type KerasLoadOptions, type KerasModel } from './keras.ts';

export * from './keras.ts';

/** Load a TF.js layers-model `model.json` and the shards beside it. */
export function loadKerasModel(modelJsonPath: string, opts: KerasLoadOptions = {}): KerasModel {
  if (!existsSync(modelJsonPath)) throw new KerasImportError(`model file '${modelJsonPath}' does not exist`);
  const dir = dirname(modelJsonPath);
  const readShard = (p: string): Uint8Array => {
    const full = isAbsolute(p) ? p : join(dir, p);
    if (!existsSync(full)) throw new KerasImportError(`${modelJsonPath}: weight shard '${p}' is missing (looked for ${full})`);
    return readFileSync(full);
  };
  return parseKerasModel(readFileSync(modelJsonPath, 'utf8'), readShard, opts, modelJsonPath);
}

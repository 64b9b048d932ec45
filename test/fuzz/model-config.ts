/**
 * Model config → task rebuild: `getTaskSpec(taskNameOf(config)).load(decodeModel(bytes))` for
 * every registered task. Seeds: one small model file per task (corpus/model/, written by
 * scripts/make_fuzz_corpus.ts). Mutations are structure-aware: the `recur.config` and `recur.vocab`
 * JSON are edited (wrong types, huge, negative and NaN-string numbers, arrays, nested objects,
 * `__proto__` keys, keys removed or duplicated) and the file is re-encoded with the original
 * tensors, so the input reaches the task loaders rather than stopping at the safetensors header.
 * The `task` key is kept most of the time for the same reason.
 */
import fc from 'fast-check';
import { SafetensorsError } from '../../src/io/safetensors.ts';
import { decodeModel } from '../../src/io/model.ts';
import { LimitError } from '../../src/io/limits.ts';
import { StateDictError } from '../../src/nn/module.ts';
import { getTaskSpec, taskNameOf, TaskRegistryError } from '../../src/models/registry.ts';
import { TaskConfigError } from '../../src/models/task-options.ts';
import { CharLMConfigError } from '../../src/models/charlm.ts';
import { VocabError } from '../../src/data/text.ts';
import { TokenizerError } from '../../src/data/tokenize.ts';
import { DataError } from '../../src/data/loaders.ts';
import { duplicateKey, hostileValue, jsonEdits, mutateJson, utf8, type Harness } from './harness.ts';
import { corpus } from './corpus.ts';

interface Seed {
  header: Record<string, unknown>;
  data: Uint8Array;
}

function parse(b: Uint8Array): Seed {
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))), data: b.subarray(8 + n) };
}

function encode(header: string, data: Uint8Array): Uint8Array {
  const h = utf8.encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

let seeds: Seed[] | undefined;

function configMutations(): fc.Arbitrary<Uint8Array> {
  seeds ??= corpus('model').map(parse);
  const s = seeds;
  if (s.length === 0) throw new Error('model-config: no seeds in corpus/model (run scripts/make_fuzz_corpus.ts)');
  return fc
    .tuple(fc.nat(s.length - 1), fc.constantFrom('recur.config', 'recur.config', 'recur.config', 'recur.vocab'), jsonEdits(4), fc.option(fc.tuple(fc.nat(), hostileValue), { freq: 4 }))
    .map(([i, key, edits, dup]) => {
      const header = structuredClone(s[i].header);
      const meta = header.__metadata__ as Record<string, string>;
      if (typeof meta[key] === 'string') {
        let text = JSON.stringify(mutateJson(JSON.parse(meta[key]), edits, ['task', 'arch'])) ?? 'null';
        if (dup) text = duplicateKey(text, dup[0], dup[1]);
        meta[key] = text;
      }
      return encode(JSON.stringify(header), s[i].data);
    });
}

export function loadTaskFromBytes(bytes: Uint8Array): void {
  const file = decodeModel(bytes);
  const name = taskNameOf(file.config);
  // a config that names no task is refused like an unknown one
  getTaskSpec(name ?? '').load(file);
}

export const harnesses: Harness[] = [
  {
    name: 'model-config/load',
    format: 'model-config',
    arbitrary: configMutations,
    run: loadTaskFromBytes,
    allowed: [SafetensorsError, LimitError, StateDictError, TaskConfigError, TaskRegistryError, CharLMConfigError, VocabError, TokenizerError, DataError],
  },
];


/**
 * Keras (TF.js layers format): `parseKerasModel` (model.json text + shards → model) and
 * `readKerasWeights` (the weights manifest alone). No file access: the shards come from memory
 * through the `readShard` callback, which refuses any path the input does not carry (as a folder
 * without that file would), so a hostile manifest can name any path without reaching the disk.
 *
 * An input is one byte string: a JSON container {"json": model.json text, "shards": {path: base64}}
 * (so a counterexample is one file). Seeds: the committed Keras fixtures (test/fixtures/keras/*).
 * Mutations: model.json edited (types, huge numbers, removed and duplicated keys, `__proto__`),
 * shard bytes mutated at the byte level, shards dropped; and byte edits of model.json text itself.
 */
import fc from 'fast-check';
import { join } from 'node:path';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { parseKerasModel, readKerasWeights, KerasImportError } from '../../src/interop/keras.ts';
import { LimitError } from '../../src/io/limits.ts';
import { byteMutations, duplicateKey, hostileValue, jsonEdits, mutateJson, utf8, utf8Decode, type Harness } from './harness.ts';
import { FIXTURES_DIR } from './corpus.ts';

export interface KerasCase {
  json: string;
  shards: Record<string, Uint8Array>;
}

export function packCase(c: KerasCase): Uint8Array {
  const shards = Object.fromEntries(Object.entries(c.shards).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  return utf8.encode(JSON.stringify({ json: c.json, shards }));
}

export function unpackCase(b: Uint8Array): KerasCase {
  const o = JSON.parse(utf8Decode(b)) as { json: string; shards: Record<string, string> };
  const shards: Record<string, Uint8Array> = Object.create(null);
  for (const [k, v] of Object.entries(o.shards)) shards[k] = new Uint8Array(Buffer.from(v, 'base64'));
  return { json: o.json, shards };
}

function reader(c: KerasCase): (path: string) => Uint8Array {
  return (path) => {
    if (!Object.prototype.hasOwnProperty.call(c.shards, path)) throw new KerasImportError(`weight shard '${path}' is missing`);
    return c.shards[path];
  };
}

let cache: KerasCase[] | undefined;
function seeds(): KerasCase[] {
  if (cache) return cache;
  const dir = join(FIXTURES_DIR, 'keras');
  cache = existsSync(dir)
    ? readdirSync(dir)
        .sort()
        .filter((d) => existsSync(join(dir, d, 'model.json')))
        .map((d) => {
          const shards: Record<string, Uint8Array> = {};
          for (const f of readdirSync(join(dir, d)).sort()) if (f.endsWith('.bin')) shards[f] = new Uint8Array(readFileSync(join(dir, d, f)));
          return { json: readFileSync(join(dir, d, 'model.json'), 'utf8'), shards };
        })
    : [];
  return cache;
}

function caseMutations(): fc.Arbitrary<Uint8Array> {
  const s = seeds();
  if (s.length === 0) throw new Error('keras: no fixtures found');
  const allShards = s.flatMap((c) => Object.values(c.shards));
  const jsonBytes = s.map((c) => utf8.encode(c.json));
  const structural = fc
    .tuple(fc.nat(s.length - 1), fc.option(jsonEdits(4), { freq: 4 }), fc.option(fc.tuple(fc.nat(), hostileValue), { freq: 5 }), fc.option(byteMutations(allShards, 4), { freq: 3 }), fc.boolean(), fc.nat())
    .map(([i, edits, dup, shardBytes, drop, which]) => {
      const c = s[i];
      let json = edits ? (JSON.stringify(mutateJson(JSON.parse(c.json), edits)) ?? 'null') : c.json;
      if (dup) json = duplicateKey(json, dup[0], dup[1]);
      const shards = { ...c.shards };
      const names = Object.keys(shards);
      if (shardBytes) shards[names[which % names.length]] = shardBytes;
      else if (drop && which % 5 === 0) delete shards[names[which % names.length]];
      return packCase({ json, shards });
    });
  // byte edits of the model.json text (broken JSON, digits changed inside shapes)
  const textual = fc.tuple(fc.nat(s.length - 1), byteMutations(jsonBytes, 6)).map(([i, jb]) => packCase({ json: utf8Decode(jb), shards: s[i].shards }));
  return fc.oneof({ arbitrary: structural, weight: 3 }, { arbitrary: textual, weight: 1 });
}

export const harnesses: Harness[] = [
  {
    name: 'keras/parse',
    format: 'keras',
    arbitrary: caseMutations,
    run: (b) => {
      const c = unpackCase(b);
      parseKerasModel(c.json, reader(c));
    },
    allowed: [KerasImportError, LimitError],
  },
  {
    name: 'keras/weights',
    format: 'keras-weights',
    arbitrary: caseMutations,
    run: (b) => {
      const c = unpackCase(b);
      let json: unknown;
      try {
        json = JSON.parse(c.json);
      } catch {
        return; // readKerasWeights takes parsed JSON; text that does not parse is parseKerasModel's case
      }
      readKerasWeights(json, reader(c));
    },
    allowed: [KerasImportError, LimitError],
  },
];


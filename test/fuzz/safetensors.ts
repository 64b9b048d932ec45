/**
 * safetensors: `decodeSafetensors` (any tensors) and `decodeModel` (a model file: float tensors and
 * JSON metadata). Seeds: files of every dtype, with metadata, with an empty tensor, and the model
 * files of the model-config corpus. Mutations: byte-level (the 8-byte header length, offsets and
 * shapes inside the JSON header are hit by the u64/u32 edits and digit flips) and header-aware
 * (the JSON header re-serialised with duplicated, removed or retyped keys).
 */
import fc from 'fast-check';
import { decodeSafetensors, encodeSafetensors, SafetensorsError, type SafeTensor } from '../../src/io/safetensors.ts';
import { decodeModel } from '../../src/io/model.ts';
import { LimitError } from '../../src/io/limits.ts';
import { byteMutations, duplicateKey, hostileValue, jsonEdits, mutateJson, utf8, utf8Decode, type Harness } from './harness.ts';
import { corpus } from './corpus.ts';

function seeds(): Uint8Array[] {
  const t = (dtype: SafeTensor['dtype'], shape: number[], data: SafeTensor['data']): SafeTensor => ({ dtype, shape, data });
  const out = [
    encodeSafetensors({ w: t('F32', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6])), b: t('F64', [3], Float64Array.from([0.5, -1, 2])) }, { 'recur.config': '{"task":"x","hiddenSize":3}' }),
    encodeSafetensors({ i: t('I64', [2], BigInt64Array.from([1n, -2n])), j: t('I32', [1, 1], Int32Array.from([7])), k: t('I16', [2], Int16Array.from([1, 2])), l: t('I8', [3], Int8Array.from([1, -1, 0])) }),
    encodeSafetensors({ u: t('U8', [4], Uint8Array.from([0, 1, 2, 255])), z: t('BOOL', [2], Uint8Array.from([0, 1])), e: t('F32', [0, 5], new Float32Array(0)), s: t('F32', [], Float32Array.from([3])) }, { note: 'scalar and empty' }),
    encodeSafetensors({}),
  ];
  // F16/BF16 cannot be written by the encoder; patch the dtype of an I16 tensor so the decoder's
  // half-float paths are seeded too
  const half = encodeSafetensors({ h: t('I16', [2, 2], Int16Array.from([0x3c00, 0xc000, 0x7c00, 0x0001])) });
  const hdr = utf8Decode(half.subarray(8, 8 + Number(new DataView(half.buffer).getBigUint64(0, true))));
  for (const dt of ['F16', 'BF16']) out.push(withHeader(half, JSON.parse(hdr.replace('"I16"', `"${dt}"`))));
  return [...out, ...corpus('model')];
}

function splitHeader(b: Uint8Array): { header: unknown; data: Uint8Array } | null {
  if (b.length < 8) return null;
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  if (8 + n > b.length) return null;
  try {
    return { header: JSON.parse(utf8Decode(b.subarray(8, 8 + n))), data: b.subarray(8 + n) };
  } catch {
    return null;
  }
}

function joinHeader(headerText: string, data: Uint8Array): Uint8Array {
  const h = utf8.encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function withHeader(file: Uint8Array, header: unknown): Uint8Array {
  const s = splitHeader(file);
  return joinHeader(JSON.stringify(header), s ? s.data : new Uint8Array(0));
}

/** Header-aware mutations: edit the JSON header, sometimes duplicate one of its keys. */
function headerMutations(all: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const parsed = all.map(splitHeader).filter((x): x is NonNullable<typeof x> => x !== null);
  return fc.tuple(fc.nat(parsed.length - 1), jsonEdits(4), fc.option(fc.tuple(fc.nat(), hostileValue), { freq: 3 })).map(([i, edits, dup]) => {
    const { header, data } = parsed[i];
    let text = JSON.stringify(mutateJson(header, edits)) ?? 'null';
    if (dup) text = duplicateKey(text, dup[0], dup[1]);
    return joinHeader(text, data);
  });
}

let cache: Uint8Array[] | undefined;
const all = (): Uint8Array[] => (cache ??= seeds());
const inputs = (): fc.Arbitrary<Uint8Array> => fc.oneof(byteMutations(all()), headerMutations(all()));

export const harnesses: Harness[] = [
  {
    name: 'safetensors/decode',
    format: 'safetensors',
    arbitrary: inputs,
    run: (b) => void decodeSafetensors(b),
    allowed: [SafetensorsError, LimitError],
  },
  {
    name: 'safetensors/model',
    format: 'safetensors-model',
    arbitrary: inputs,
    run: (b) => void decodeModel(b),
    allowed: [SafetensorsError, LimitError],
  },
];

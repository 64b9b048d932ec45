/**
 * Model files: save → load round trips bit-exactly (float32 and float64), config and vocab travel
 * in the metadata, and files that do not fit the model — or are damaged — are rejected with a
 * message naming the problem, leaving the model untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRU, LSTM, Linear, Rng, StateDictError } from '../src/index.ts';
import { decodeModel, encodeModel } from '../src/io/model.ts';
import { loadModelFile, loadModelInto, saveModel } from '../src/io/files.ts';
import { encodeSafetensors, SafetensorsError } from '../src/io/safetensors.ts';
import { LimitError } from '../src/io/limits.ts';

const dir = mkdtempSync(join(tmpdir(), 'recur-model-'));

function bytesOf(a: Float32Array | Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

for (const dtype of ['float32', 'float64'] as const) {
  test(`save → load round trip is bit-exact (${dtype})`, () => {
    const a = new LSTM({ inputSize: 5, hiddenSize: 7, numLayers: 2, bidirectional: true, dtype, rng: new Rng(1) });
    const b = new LSTM({ inputSize: 5, hiddenSize: 7, numLayers: 2, bidirectional: true, dtype, rng: new Rng(2) });
    const path = join(dir, `lstm-${dtype}.safetensors`);
    saveModel(path, a, { config: { arch: 'lstm', hiddenSize: 7 }, vocab: ['a', 'b', '\u00e9'], metadata: { note: 'hi' } });
    const file = loadModelInto(b, path);
    for (const [[na, pa], [nb, pb]] of a.namedParameters().map((x, i) => [x, b.namedParameters()[i]] as const)) {
      assert.equal(na, nb);
      assert.deepEqual(bytesOf(pb.toArray()), bytesOf(pa.toArray()), `${na} differs after load`);
    }
    assert.deepEqual(file.config, { arch: 'lstm', hiddenSize: 7 });
    assert.deepEqual(file.vocab, ['a', 'b', '\u00e9']);
    assert.equal(file.metadata.note, 'hi');
    assert.equal(file.metadata.format, 'pt');
    // Saving again gives identical bytes (deterministic writer).
    assert.deepEqual(encodeModel(b, { config: { arch: 'lstm', hiddenSize: 7 }, vocab: ['a', 'b', '\u00e9'], metadata: { note: 'hi' } }), new Uint8Array(readFileSync(path)));
  });
}

test('tensor names are the PyTorch state_dict names', () => {
  const m = new GRU({ inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, rng: new Rng(0) });
  const file = decodeModel(encodeModel(m));
  assert.deepEqual(Object.keys(file.tensors).sort(), [
    'bias_hh_l0', 'bias_hh_l0_reverse', 'bias_hh_l1', 'bias_hh_l1_reverse',
    'bias_ih_l0', 'bias_ih_l0_reverse', 'bias_ih_l1', 'bias_ih_l1_reverse',
    'weight_hh_l0', 'weight_hh_l0_reverse', 'weight_hh_l1', 'weight_hh_l1_reverse',
    'weight_ih_l0', 'weight_ih_l0_reverse', 'weight_ih_l1', 'weight_ih_l1_reverse',
  ]);
  assert.deepEqual(file.tensors.weight_ih_l1.shape, [12, 8]);
  assert.deepEqual(file.tensors.weight_hh_l0_reverse.shape, [12, 4]);
});

test('the writer is atomic: no temp files are left and an existing file is replaced whole', () => {
  const sub = mkdtempSync(join(dir, 'atomic-'));
  const path = join(sub, 'm.safetensors');
  writeFileSync(path, 'old contents');
  saveModel(path, new Linear(3, 2, { rng: new Rng(0) }));
  assert.deepEqual(readdirSync(sub), ['m.safetensors']);
  assert.ok(loadModelFile(path).tensors.weight);
});

test('a file for another architecture is rejected, naming the tensor and both shapes, and the model is unchanged', () => {
  const small = new LSTM({ inputSize: 3, hiddenSize: 4, rng: new Rng(0) });
  const big = new LSTM({ inputSize: 3, hiddenSize: 5, rng: new Rng(1) });
  const path = join(dir, 'small.safetensors');
  saveModel(path, small);
  const before = big.parameters().map((p) => p.toArray());
  assert.throws(() => loadModelInto(big, path), (e: Error) => e instanceof SafetensorsError && /weight_ih_l0/.test(e.message) && /\[16, 3\]/.test(e.message) && /\[20, 3\]/.test(e.message));
  big.parameters().forEach((p, i) => assert.deepEqual(p.toArray(), before[i]));
});

test('missing and unexpected tensors are named', () => {
  const m = new Linear(3, 2, { rng: new Rng(0) });
  const noBias = encodeSafetensors({ weight: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) } });
  writeFileSync(join(dir, 'nobias.safetensors'), noBias);
  assert.throws(() => loadModelInto(m, join(dir, 'nobias.safetensors')), /bias/);
  const extra = encodeSafetensors({
    weight: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) },
    bias: { dtype: 'F32', shape: [2], data: new Float32Array(2) },
    'extra.thing': { dtype: 'F32', shape: [1], data: new Float32Array(1) },
  });
  writeFileSync(join(dir, 'extra.safetensors'), extra);
  assert.throws(() => loadModelInto(m, join(dir, 'extra.safetensors')), /extra\.thing/);
});

test('integer tensors are rejected as parameters', () => {
  const bytes = encodeSafetensors({ weight: { dtype: 'I32', shape: [2, 3], data: new Int32Array(6) }, bias: { dtype: 'F32', shape: [2], data: new Float32Array(2) } });
  assert.throws(() => decodeModel(bytes, new Linear(3, 2)), /'weight' has dtype I32.*floating point/);
});

test('truncated, oversized-header, overlapping and corrupt-metadata files are rejected with specific messages', () => {
  const m = new Linear(3, 2, { rng: new Rng(0) });
  const good = encodeModel(m, { config: { arch: 'linear' } });
  assert.throws(() => decodeModel(good.subarray(0, good.length - 4), m), (e: Error) => e instanceof SafetensorsError && /truncat|beyond|past|end/i.test(e.message));
  assert.throws(() => decodeModel(good.subarray(0, 5)), (e: Error) => e instanceof SafetensorsError);
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  assert.throws(() => decodeModel(huge), (e: Error) => e instanceof SafetensorsError && /header/i.test(e.message));
  // Overlap: point bias at the weight's bytes.
  const n = Number(new DataView(good.buffer, good.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(good.subarray(8, 8 + n)));
  header.weight.data_offsets = [0, 24]; // bias already sits at [0, 8]
  const text = new TextEncoder().encode(JSON.stringify(header).padEnd(n, ' '));
  const overlapped = good.slice();
  overlapped.set(text, 8);
  assert.throws(() => decodeModel(overlapped), (e: Error) => e instanceof SafetensorsError && /overlap/i.test(e.message));
  // Metadata that is not JSON where JSON is promised.
  const badMeta = encodeSafetensors({ weight: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) }, bias: { dtype: 'F32', shape: [2], data: new Float32Array(2) } }, { 'recur.config': '{nope' });
  assert.throws(() => decodeModel(badMeta), /recur\.config.*not valid JSON/);
});

test('loadStateDict reports every problem at once and changes nothing', () => {
  const m = new Linear(3, 2, { rng: new Rng(0) });
  const before = m.weight.toArray();
  assert.throws(
    () => m.loadStateDict({ weight: { shape: [3, 3], data: new Float32Array(9) }, other: { shape: [1], data: [1] } }),
    (e: Error) => e instanceof StateDictError && /missing: bias/.test(e.message) && /unexpected: other/.test(e.message) && /'weight' has shape \[3, 3\], the model expects \[2, 3\]/.test(e.message),
  );
  assert.deepEqual(m.weight.toArray(), before);
});

test('decodeModel: limits on the parameters of the file and on its tensors', () => {
  const m = new LSTM({ inputSize: 3, hiddenSize: 4, rng: new Rng(1) });
  const bytes = encodeModel(m, { config: { arch: 'lstm' } });
  const n = m.numParameters();
  assert.equal(Object.keys(decodeModel(bytes, undefined, { limits: { parameters: n } }).tensors).length, 4);
  assert.throws(() => decodeModel(bytes, undefined, { limits: { parameters: n - 1 } }), (e: Error) => e instanceof LimitError && e.key === 'parameters' && new RegExp(`parameters \\(the sum over its tensors\\): ${n} is over the limit of ${n - 1}`).test(e.message));
  // the decoder's limits travel through: 4 tensors, the largest of 4·4·4 = 64 elements
  assert.throws(() => decodeModel(bytes, undefined, { limits: { tensors: 3 } }), (e: Error) => e instanceof LimitError && e.key === 'tensors');
  assert.throws(() => decodeModel(bytes, undefined, { limits: { tensorElements: 63 } }), (e: Error) => e instanceof LimitError && e.key === 'tensorElements');
});

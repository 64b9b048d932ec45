import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { importCommand, buildRecurrentLayer, IMPORT_USAGE, type RecurrentImportConfig } from '../src/cli/import.ts';
import { encodeSafetensors } from '../src/io/safetensors.ts';
import { moduleTensors } from '../src/io/model.ts';
import { loadModelFile } from '../src/io/files.ts';
import { formatError } from '../src/cli/args.ts';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  let code: number;
  try {
    code = await importCommand(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  } catch (e) {
    // as main prints it: the one error style of every command
    const f = formatError('import', e);
    err += f.text;
    code = f.exitCode;
  }
  return { code, out, err };
}

const KERAS = join('test', 'fixtures', 'keras');

test('usage: no arguments, --help, unknown extension, missing file', async () => {
  assert.equal((await run([])).code, 2);
  const h = await run(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.out, /recur import FILE/);
  const dir = mkdtempSync(join(tmpdir(), 'recur-import-'));
  try {
    writeFileSync(join(dir, 'x.bin'), 'hi');
    const r = await run([join(dir, 'x.bin')]);
    assert.equal(r.code, 2);
    assert.match(r.err, /cannot tell the format/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const m = await run(['nope/missing.onnx']);
  assert.equal(m.code, 1);
  assert.match(m.err, /does not exist/);
  // the one error style: `recur import: message`, a hint line for usage errors, no usage dump
  assert.equal(m.err, "recur import: 'nope/missing.onnx' does not exist\n");
  const none = await run([]);
  assert.equal(none.err, "recur import: missing the FILE argument (.onnx, a Keras/TF.js model.json, or .safetensors)\nRun 'recur import --help' for usage.\n");
  const opt = await run([join(KERAS, 'gru_reset_after_seq', 'model.json'), '--arch', 'lstm']);
  assert.equal(opt.code, 2);
  assert.match(opt.err, /^recur import: --arch does not apply to a Keras model\.json \(its options: --check, --atol, --hard-sigmoid, --reference\)\n/);
});

test('ONNX: -o converts a recurrent pipeline; a graph it cannot convert is refused with the reason and nothing is written', async () => {
  const onnx = join('test', 'fixtures', 'onnx', 'test_rnn_initial_random', 'model.onnx');
  const dir = mkdtempSync(join(tmpdir(), 'recur-import-'));
  try {
    const out = join(dir, 'model.safetensors');
    const r = await run([onnx, '-o', out]);
    assert.equal(r.code, 1);
    // this backend-test graph takes its weights as graph inputs: not an exported pipeline
    assert.match(r.err, /^recur import: .*model\.onnx: cannot convert: input '\w+' is not a float \[L·D, B, H\] initial state/);
    assert.ok(!existsSync(out));
    const f = await run([onnx, '--force']);
    assert.equal(f.code, 2);
    assert.match(f.err, /--force applies with -o/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(IMPORT_USAGE, /FILE\.onnx .*-o OUT +convert a recurrent pipeline/s);
});

test('ONNX: prints opset, inputs, outputs and operators', async () => {
  const r = await run([join('test', 'fixtures', 'onnx', 'test_rnn_initial_random', 'model.onnx')]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /opset \d+/);
  assert.match(r.out, /input {2}\w+/);
  assert.match(r.out, /output \w+/);
  assert.match(r.out, /operators: .*RNN/);
});

test('Keras model.json: summary, and --check against io.json', async () => {
  const model = join(KERAS, 'gru_reset_after_seq', 'model.json');
  const s = await run([model]);
  assert.equal(s.code, 0, s.err);
  assert.match(s.out, /GRU\(units=4.*reset_after=true.*\[fused\]/);
  const c = await run([model, '--check', join(KERAS, 'gru_reset_after_seq', 'io.json')]);
  assert.equal(c.code, 0, c.err);
  assert.match(c.err, /PASS: max abs error/);
  const y = JSON.parse(c.out) as { shape: number[]; data: number[] };
  assert.deepEqual(y.shape, [2, 5, 2]);
  // a wrong expectation fails
  const dir = mkdtempSync(join(tmpdir(), 'recur-import-'));
  try {
    const io = JSON.parse(readFileSync(join(KERAS, 'gru_reset_after_seq', 'io.json'), 'utf8'));
    io.output.data[3] += 0.01;
    writeFileSync(join(dir, 'io.json'), JSON.stringify(io));
    const f = await run([model, '--check', join(dir, 'io.json')]);
    assert.equal(f.code, 1);
    assert.match(f.err, /FAIL: max abs error 1\.00e-2/);
    const h = await run([join(KERAS, 'lstm_hard_sigmoid_keras3_seq', 'model.json'), '--hard-sigmoid', 'keras2']);
    assert.match(h.out, /Keras 2/);
    assert.equal((await run([model, '--hard-sigmoid', 'keras4'])).code, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const bad = await run([join(KERAS, 'nothing', 'model.json')]);
  assert.equal(bad.code, 1);
});

test('Keras model.json --check: a manifest pointing outside the folder is refused, nothing of the file is printed', async () => {
  // secret.bin beside the model folder has exactly the bytes the weights need, so without
  // containment --check would run the model on it and print the result
  const dir = mkdtempSync(join(tmpdir(), 'recur-import-'));
  try {
    const c = 'simplernn_tanh_seq';
    writeFileSync(join(dir, 'secret.bin'), readFileSync(join(KERAS, c, 'group1-shard1of1.bin')));
    mkdirSync(join(dir, 'model'));
    const j = JSON.parse(readFileSync(join(KERAS, c, 'model.json'), 'utf8'));
    j.weightsManifest[0].paths = ['../secret.bin'];
    writeFileSync(join(dir, 'model', 'model.json'), JSON.stringify(j));
    const r = await run([join(dir, 'model', 'model.json'), '--check', join(KERAS, c, 'io.json')]);
    assert.equal(r.code, 1, r.out);
    assert.equal(r.out, '');
    assert.match(r.err, /weight shard '\.\.\/secret\.bin' points outside the folder of the model\.json/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('safetensors state_dict + --arch: loads into the recur layer and writes a model file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'recur-import-'));
  try {
    const cfg: RecurrentImportConfig = { arch: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, batchFirst: false };
    const src = buildRecurrentLayer(cfg); // same names/shapes as PyTorch's nn.LSTM state_dict
    const sd = join(dir, 'lstm.safetensors');
    writeFileSync(sd, encodeSafetensors(moduleTensors(src), { format: 'pt' }));
    const out = join(dir, 'out.safetensors');
    const r = await run([sd, '--arch', 'lstm', '--input-size', '3', '--hidden-size', '4', '--num-layers', '2', '--bidirectional', '-o', out]);
    assert.equal(r.code, 0, r.err);
    // -o onto an existing file: refused without --force (naming the file and the flag), replaced with it
    const again = await run([sd, '--arch', 'lstm', '--input-size', '3', '--hidden-size', '4', '--num-layers', '2', '--bidirectional', '-o', out]);
    assert.equal(again.code, 1);
    assert.equal(again.err, `recur import: '${out}' already exists; pass --force to replace it, or choose another -o\n`);
    const forced = await run([sd, '--arch=lstm', '--input-size=3', '--hidden-size=4', '--num-layers=2', '--bidirectional', `--output=${out}`, '--force']);
    assert.equal(forced.code, 0, forced.err);
    assert.match(forced.out, /wrote /);
    const neg = await run([sd, '--arch', 'lstm', '--input-size', '-3', '--hidden-size', '4']);
    assert.equal(neg.code, 2);
    assert.match(neg.err, /^recur import: --input-size must be a positive integer, got '-3'\n/);
    assert.match(r.out, /loaded 16 tensors/);
    const file = loadModelFile(out);
    assert.deepEqual(file.config, { arch: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, batchFirst: false });
    const want = moduleTensors(src);
    for (const [k, t] of Object.entries(want)) assert.deepEqual(Array.from(file.tensors[k].data as Float32Array), Array.from(t.data as Float32Array), k);
    // wrong architecture → shape/name errors naming the tensor
    const w = await run([sd, '--arch', 'lstm', '--input-size', '3', '--hidden-size', '5', '--num-layers', '2', '--bidirectional']);
    assert.equal(w.code, 1);
    assert.match(w.err, /weight_ih_l0/);
    const g = await run([sd, '--arch', 'gru', '--input-size', '3', '--hidden-size', '4', '--num-layers', '2', '--bidirectional']);
    assert.equal(g.code, 1);
    assert.equal((await run([sd, '--arch', 'transformer', '--input-size', '3', '--hidden-size', '4'])).code, 2);
    assert.equal((await run([sd, '--arch', 'lstm', '--input-size', '3'])).code, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

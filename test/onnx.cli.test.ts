/**
 * The ONNX CLI functions: `recur export MODEL --format onnx -o FILE` (char LM and classifier
 * model files), `recur onnx run` (JSON and TensorProto inputs, JSON outputs), `recur onnx test`
 * (pass/fail per output, exit code 1 on any failure, parent folders of many cases) and
 * `recur onnx info`, with their usage and error paths.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng, Linear } from '../src/index.ts';
import { CharLM } from '../src/models/charlm.ts';
import { buildClassifier } from '../src/models/classifier.ts';
import { saveModel } from '../src/io/files.ts';
import { exportCommand as exportFn, onnxCommand as onnxFn, ONNX_USAGE, type CliIO } from '../src/cli/onnx.ts';
import { formatError } from '../src/cli/args.ts';
import { loadOnnx } from '../src/onnx/model.ts';
import { referenceForward, charLMExportSpec } from '../src/onnx/export.ts';
import { buildModel } from '../src/onnx/builder.ts';
import { encodeTensorProto } from '../src/onnx/proto.ts';
import { tensorToProto } from '../src/onnx/tensor.ts';

const dir = mkdtempSync(join(tmpdir(), 'recur-onnx-cli-'));

/** Run a command as main does: a thrown error is printed in the one style of every command. */
async function asMain(cmd: string, f: (argv: string[], io: CliIO) => Promise<number>, argv: string[], io: CliIO): Promise<number> {
  try {
    return await f(argv, io);
  } catch (e) {
    const { text, exitCode } = formatError(cmd, e);
    io.err(text);
    return exitCode;
  }
}
const exportCommand = (argv: string[], io: CliIO): Promise<number> => asMain('export', exportFn, argv, io);
const onnxCommand = (argv: string[], io: CliIO): Promise<number> => asMain('onnx', onnxFn, argv, io);

function capture(): CliIO & { stdout: string; stderr: string } {
  const io = { stdout: '', stderr: '', out: (s: string) => void (io.stdout += s), err: (s: string) => void (io.stderr += s) };
  return io;
}

const lm = new CharLM({ vocabSize: 8, embeddingDim: 3, hiddenSize: 4, numLayers: 2, rng: new Rng(12) });
const lmPath = join(dir, 'lm.safetensors');
saveModel(lmPath, lm, { config: lm.config, vocab: { chars: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], unk: null } });

test('recur export --format onnx writes a char LM that matches the model', async () => {
  const out = join(dir, 'lm.onnx');
  const io = capture();
  assert.equal(await exportCommand([lmPath, '--format', 'onnx', '-o', out], io), 0, io.stderr);
  assert.match(io.stdout, /wrote .*lm\.onnx .*inputs input, h0, c0; outputs output, hn, cn/);
  const model = loadOnnx(readFileSync(out));
  assert.equal(model.metadata['recur.config'], JSON.stringify(lm.config));
  assert.ok(model.metadata['recur.vocab']);
  const inputs = { input: { shape: [2, 1], data: [3, 5] }, h0: { shape: [2, 1, 4], data: new Array(8).fill(0.2) }, c0: { shape: [2, 1, 4], data: new Array(8).fill(0) } };
  const ref = referenceForward(lm, charLMExportSpec(), inputs);
  const got = model.run(inputs);
  for (const k of ['output', 'hn', 'cn']) for (let i = 0; i < ref[k].data.length; i++) assert.ok(Math.abs(got[k].data[i] - ref[k].data[i]) < 1e-5);

  const io2 = capture();
  const out2 = join(dir, 'lm-probs.onnx');
  assert.equal(await exportCommand([lmPath, '--format=onnx', '-o', out2, '--no-state', '--softmax', '--batch-first'], io2), 0, io2.stderr);
  const m2 = loadOnnx(readFileSync(out2));
  assert.deepEqual(m2.inputs.map((i) => [i.name, i.shape]), [['input', ['B', 'T']]]);
  const p = m2.run({ input: { shape: [1, 3], data: [1, 2, 3] } }).output;
  assert.deepEqual(p.shape, [1, 3, 8]);
  assert.ok(Math.abs(Array.from(p.data.slice(0, 8)).reduce((a, b) => a + b, 0) - 1) < 1e-5);
});

test('recur export handles the sequence classifier (ids + lengths → class logits), every pooling', async () => {
  const texts = ['good movie', 'bad film', 'great plot', 'awful acting', 'nice', 'terrible', 'good good', 'bad bad'];
  const data = { train: texts.map((text, i) => ({ text, label: i % 2 })), val: texts.slice(0, 2).map((text, i) => ({ text, label: i % 2 })) };
  for (const pooling of ['last', 'mean', 'max', 'mean+max'] as const) {
    const { task } = buildClassifier('sentiment', ['pos', 'neg'], {
      tokenizer: 'char', lowercase: true, minCount: 1, maxVocab: 100, cell: 'gru', embeddingDim: 4, hiddenSize: 5, numLayers: 2,
      bidirectional: true, pooling, dropout: 0, maxLen: 20, truncate: 'end', batchSize: 4, seed: 3,
    }, data);
    const path = join(dir, `clf-${pooling}.safetensors`);
    const d = task.describe();
    saveModel(path, task.model, { config: d.config, vocab: d.vocab });
    const out = join(dir, `clf-${pooling}.onnx`);
    const io = capture();
    assert.equal(await exportCommand([path, '--format', 'onnx', '-o', out], io), 0, io.stderr);
    const model = loadOnnx(readFileSync(out));
    assert.deepEqual(model.inputs.map((i) => i.name), ['input', 'lengths']);
    // time-major [T, B = 2], the second sample padded
    const a = task.encode('good film'), b = task.encode('bad');
    const T = a.length, B = 2;
    const flat = new Array<number>(T * B).fill(0);
    for (let t = 0; t < T; t++) {
      flat[t * B] = a[t];
      flat[t * B + 1] = t < b.length ? b[t] : task.vocab.padId!;
    }
    task.model.eval();
    const want = task.model.forward(flat, [a.length, b.length], T, B).toArray();
    const got = model.run({ input: { shape: [T, B], data: flat }, lengths: { shape: [B], data: [a.length, b.length] } }).output;
    assert.deepEqual(got.shape, [B, 2]);
    // the command once exported a 'max' classifier as a mean: the logits must be the model's
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got.data[i] - want[i]) < 1e-5, `${pooling}: ${got.data[i]} vs ${want[i]}`);
  }
});

test('recur export errors: usage (exit 2) and models it cannot rebuild (exit 1)', async () => {
  const noConfig = join(dir, 'bare.safetensors');
  saveModel(noConfig, new Linear(2, 3, { rng: new Rng(1) }));
  const otherArch = join(dir, 'other.safetensors');
  saveModel(otherArch, new Linear(2, 3, { rng: new Rng(1) }), { config: { arch: 'transformer' } });
  const cases: [string[], number, RegExp][] = [
    [[lmPath, '-o', join(dir, 'x.onnx')], 2, /missing --format onnx/],
    [[lmPath, '--format', 'tflite', '-o', join(dir, 'x.onnx')], 2, /unsupported format 'tflite'/],
    [[lmPath, '--format', 'onnx'], 2, /missing -o FILE/],
    [['--format', 'onnx', '-o', 'x.onnx'], 2, /missing the MODEL file argument/],
    [[lmPath, '--format', 'onnx', '-o', 'x.onnx', '--frobnicate'], 2, /unknown option '--frobnicate'/],
    [[join(dir, 'nope.safetensors'), '--format', 'onnx', '-o', join(dir, 'x.onnx')], 1, /does not exist/],
    [[noConfig, '--format', 'onnx', '-o', join(dir, 'x.onnx')], 1, /no recur.config metadata/],
    [[otherArch, '--format', 'onnx', '-o', join(dir, 'x.onnx')], 1, /cannot export architecture "transformer" .*charlm, rnn-classifier/],
  ];
  for (const [argv, code, re] of cases) {
    const io = capture();
    assert.equal(await exportCommand(argv, io), code, argv.join(' '));
    assert.match(io.stderr, re);
    // the one error style of every command: no 'error:' and no usage dump, one hint line for usage
    const lines = io.stderr.trimEnd().split('\n');
    assert.match(lines[0], /^recur export: /, io.stderr);
    assert.deepEqual(lines.slice(1), code === 2 ? ["Run 'recur export --help' for usage."] : [], io.stderr);
  }
});

test('recur export refuses to replace an existing file unless --force; --output=FILE works', async () => {
  const out = join(dir, 'exists.onnx');
  writeFileSync(out, 'precious');
  const io = capture();
  assert.equal(await exportCommand([lmPath, '--format', 'onnx', '-o', out], io), 1);
  assert.equal(io.stderr, `recur export: '${out}' already exists; pass --force to replace it, or choose another -o\n`);
  assert.equal(readFileSync(out, 'utf8'), 'precious', 'left as it was');
  const forced = capture();
  assert.equal(await exportCommand([lmPath, '--format=onnx', `--output=${out}`, '--force'], forced), 0, forced.stderr);
  assert.deepEqual(loadOnnx(readFileSync(out)).inputs.map((i) => i.name), ['input', 'h0', 'c0']);
  const isDir = capture();
  assert.equal(await exportCommand([lmPath, '--format', 'onnx', '-o', dir, '--force'], isDir), 1);
  assert.match(isDir.stderr, /it is a directory/);
});

test('recur onnx run feeds JSON and .pb inputs and prints outputs as JSON', async () => {
  const modelPath = join(dir, 'lm.onnx');
  const inJson = join(dir, 'ids.json');
  writeFileSync(inJson, JSON.stringify({ shape: [2, 1], data: [3, 5] }));
  const h0 = join(dir, 'h0.json');
  writeFileSync(h0, JSON.stringify([[[0.2, 0.2, 0.2, 0.2]], [[0.2, 0.2, 0.2, 0.2]]]));
  const c0 = join(dir, 'c0.pb');
  writeFileSync(c0, encodeTensorProto(tensorToProto({ dtype: 'float32', shape: [2, 1, 4], data: new Float32Array(8) })));
  const io = capture();
  assert.equal(await onnxCommand(['run', modelPath, '--inputs', `input=${inJson}`, `h0=${h0}`, `c0=${c0}`], io), 0, io.stderr);
  const printed = JSON.parse(io.stdout) as Record<string, { dtype: string; shape: number[]; data: number[] }>;
  const direct = loadOnnx(readFileSync(modelPath)).run({ input: { shape: [2, 1], data: [3, 5] }, h0: { shape: [2, 1, 4], data: new Array(8).fill(0.2) }, c0: { shape: [2, 1, 4], data: new Array(8).fill(0) } });
  assert.deepEqual(Object.keys(printed), ['output', 'hn', 'cn']);
  assert.deepEqual(printed.output.shape, [2, 1, 8]);
  assert.equal(printed.output.dtype, 'float32');
  for (let i = 0; i < 16; i++) assert.ok(Math.abs(printed.output.data[i] - direct.output.data[i]) < 1e-6);

  const bad: [string[], number, RegExp][] = [
    [['run', modelPath, '--inputs', 'input'], 2, /expects name=FILE/],
    [['run', modelPath, '--inputs'], 2, /--inputs needs a value/],
    [['run', modelPath, '--inputs', `input=${join(dir, 'missing.json')}`], 1, /does not exist/],
    [['run', modelPath, '--inputs', `input=${inJson}`], 1, /missing input 'h0'/],
    [['run'], 2, /missing MODEL.onnx/],
    [['run', join(dir, 'nope.onnx')], 1, /does not exist/],
  ];
  const badJson = join(dir, 'bad.json');
  writeFileSync(badJson, '{"shape": [2, 1], "data": [1, ');
  bad.push([['run', modelPath, '--inputs', `input=${badJson}`], 1, /not valid JSON/]);
  const ragged = join(dir, 'ragged.json');
  writeFileSync(ragged, '[[1, 2], [3]]');
  bad.push([['run', modelPath, '--inputs', `input=${ragged}`], 1, /not rectangular/]);
  for (const [argv, code, re] of bad) {
    const e = capture();
    assert.equal(await onnxCommand(argv, e), code, argv.join(' '));
    assert.match(e.stderr, re);
    assert.match(e.stderr, /^recur onnx: /);
    assert.doesNotMatch(e.stderr, /^error:|usage:|OnnxError/m, 'one style, no usage dump');
  }
  // --inputs=name=FILE (the = form) is read like --inputs name=FILE
  const eq = capture();
  assert.equal(await onnxCommand(['run', modelPath, `--inputs=input=${inJson}`, `--inputs=h0=${h0}`, `--inputs=c0=${c0}`], eq), 0, eq.stderr);
  assert.deepEqual(JSON.parse(eq.stdout), printed);
});

/** Write an ONNX test case: y = tanh(x), with the expected output optionally wrong. */
function writeCase(root: string, name: string, wrong: boolean): void {
  const d = join(root, name);
  mkdirSync(join(d, 'test_data_set_0'), { recursive: true });
  writeFileSync(join(d, 'model.onnx'), buildModel({
    inputs: [{ name: 'x', dtype: 'float32', shape: [3] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [3] }],
    nodes: [{ op: 'Tanh', inputs: ['x'], outputs: ['y'] }],
  }));
  const x = Float32Array.of(-1, 0, 2);
  const y = Float32Array.from(x, (v) => Math.tanh(v) + (wrong ? 0.01 : 0));
  writeFileSync(join(d, 'test_data_set_0', 'input_0.pb'), encodeTensorProto(tensorToProto({ dtype: 'float32', shape: [3], data: x }, 'x')));
  writeFileSync(join(d, 'test_data_set_0', 'output_0.pb'), encodeTensorProto(tensorToProto({ dtype: 'float32', shape: [3], data: y }, 'y')));
}

test('recur onnx test reports per-output errors and exits 1 on any failure', async () => {
  const root = join(dir, 'cases');
  writeCase(root, 'test_tanh_ok', false);
  writeCase(root, 'test_tanh_wrong', true);
  const io = capture();
  assert.equal(await onnxCommand(['test', join(root, 'test_tanh_ok')], io), 0, io.stdout + io.stderr);
  assert.match(io.stdout, /PASS test_tanh_ok\n  test_data_set_0 y: ok  max abs err/);
  const all = capture();
  assert.equal(await onnxCommand(['test', root], all), 1);
  assert.match(all.stdout, /PASS test_tanh_ok/);
  assert.match(all.stdout, /FAIL test_tanh_wrong\n  test_data_set_0 y: FAIL  max abs err 1\.00e-2, max rel err/);
  assert.match(all.stdout, /1 passed, 1 failed/);
  const loose = capture();
  assert.equal(await onnxCommand(['test', root, '--atol', '0.02'], loose), 0, loose.stdout);
  const looseEq = capture();
  assert.equal(await onnxCommand(['test', root, '--atol=0.02'], looseEq), 0, looseEq.stdout);
  const negative = capture();
  assert.equal(await onnxCommand(['test', root, '--atol', '-1'], negative), 2);
  assert.equal(negative.stderr, "recur onnx: --atol must be a number ≥ 0, got '-1'\nRun 'recur onnx --help' for usage.\n");
  // a case whose model is broken is a failure, not a crash
  const broken = join(root, 'test_broken');
  mkdirSync(join(broken, 'test_data_set_0'), { recursive: true });
  writeFileSync(join(broken, 'model.onnx'), Uint8Array.of(1, 2, 3));
  const b = capture();
  assert.equal(await onnxCommand(['test', broken], b), 1);
  assert.match(b.stdout, /FAIL test_broken: ONNX model: not a valid ONNX ModelProto/);
  const none = capture();
  assert.equal(await onnxCommand(['test', join(dir, 'cases', 'test_tanh_ok', 'test_data_set_0')], none), 1);
  assert.match(none.stderr, /no ONNX test cases/);
});

test('recur onnx info and usage', async () => {
  const io = capture();
  assert.equal(await onnxCommand(['info', join(dir, 'lm.onnx')], io), 0, io.stderr);
  assert.match(io.stdout, /opset 14, produced by recur/);
  assert.match(io.stdout, /input  input: int64 \[T, B\]/);
  assert.match(io.stdout, /output cn: float32 \[2, B, 4\]/);
  // the help says "opset, inputs, outputs and operators": the operators are listed, with counts
  assert.match(ONNX_USAGE, /info MODEL\.onnx\n\s+print the model's opset, inputs, outputs and operators/);
  assert.match(io.stdout, /^ {2}operators: .*\bLSTM\b/m);
  const u = capture();
  assert.equal(await onnxCommand(['frob'], u), 2);
  assert.equal(u.stderr, "recur onnx: unknown onnx command 'frob' (commands: run, test, info)\nRun 'recur onnx --help' for usage.\n");
  const h = capture();
  assert.equal(await onnxCommand(['--help'], h), 0);
  assert.match(h.stdout, /recur onnx test DIR/);
  // each sub-command takes -h/--help too (the usage lists it among the options): the same usage
  for (const sub of ['run', 'test', 'info']) {
    const hs = capture();
    assert.equal(await onnxCommand([sub, sub === 'test' ? '-h' : '--help'], hs), 0, hs.stderr);
    assert.equal(hs.stdout, ONNX_USAGE);
  }
  const e = capture();
  assert.equal(await onnxCommand([], e), 2);
  const x = capture();
  assert.equal(await exportCommand(['--help'], x), 0);
  assert.match(x.stdout, /--format onnx/);
});

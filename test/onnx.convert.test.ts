/**
 * ONNX → recur conversion (src/onnx/convert.ts): every corpus case the manifest marks as a
 * recurrent pipeline converts; the converted model's outputs equal the graph's (run by recur's
 * ONNX interpreter) and the exporter's stored outputs to 1e-5 on every data set; the layers match
 * the manifest's description of the PyTorch module, and for PyTorch exports the tensor names are
 * the module's state_dict names. Graphs outside the pattern are refused, naming the node and why.
 * A converted model fine-tunes (the loss falls), survives a model-file round trip, and a recur
 * model exported to ONNX converts back to the same bits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CORPUS as ROOT, dataSets, manifest, numbered, readPb, worst, type CorpusLayers as Layers } from './helpers/onnx-corpus.ts';
import { convertOnnx, OnnxConvertError } from '../src/onnx/convert.ts';
import { PipelineModel, type PipelineConfig, type TokenIds } from '../src/onnx/convert-model.ts';
import { loadOnnx } from '../src/onnx/model.ts';
import { exportOnnx } from '../src/onnx/export.ts';
import { AttrType, decodeModelProto, type AttributeProto, type NodeProto } from '../src/onnx/proto.ts';
import type { OnnxTensor } from '../src/onnx/tensor.ts';
import { Embedding, GRU, LSTM, Lambda, Linear, Module, Rng, Sequential, Tensor, tensor } from '../src/index.ts';
import { relu } from '../src/autograd/ops/elementwise.ts';
import { noGrad, backward } from '../src/autograd/tape.ts';
import { crossEntropy, mseLoss } from '../src/autograd/ops/nn.ts';
import { Adam } from '../src/train/optim.ts';
import { loadModelInto, saveModel, loadModelFile } from '../src/io/files.ts';
import { importCommand } from '../src/cli/import.ts';
import { readModelInfo } from '../src/cli/info.ts';

const ONNX_FIXTURES = fileURLToPath(new URL('./fixtures/onnx', import.meta.url));
const TOL = 1e-5;

/** The converted model's outputs, in graph order, for the graph's inputs (in graph order). */
function runConverted(model: PipelineModel, inputs: OnnxTensor[]): Tensor[] {
  const c = model.config;
  const [x, ...states] = inputs;
  const main: TokenIds | Tensor = c.input === 'ids' ? { ids: x.data, shape: x.shape } : tensor(x.data, x.shape);
  const st: { h?: Tensor; c?: Tensor } = {};
  c.stateInputs.forEach((which, i) => (st[which] = tensor(states[i].data, states[i].shape)));
  model.eval();
  return noGrad(() => model.run(main, st).outputs);
}

const RECUR_CELL: Record<Layers['kind'], string> = { RNN_TANH: 'rnn', RNN_RELU: 'rnn-relu', LSTM: 'lstm', GRU: 'gru' };

function checkAgainstGraph(dir: string, what: string): { config: PipelineConfig; names: string[] } {
  const bytes = readFileSync(join(dir, 'model.onnx'));
  const { model, config } = convertOnnx(bytes);
  const graph = loadOnnx(bytes);
  for (const ds of dataSets(dir)) {
    const inputs = numbered(ds, 'input').map(readPb);
    const expected = numbered(ds, 'output').map(readPb);
    const got = runConverted(model, inputs);
    const byGraph = graph.run(Object.fromEntries(graph.inputs.map((info, i) => [info.name, inputs[i]])));
    assert.equal(got.length, graph.outputs.length, `${what}: one output per graph output`);
    graph.outputs.forEach((info, i) => {
      const r = byGraph[info.name];
      assert.deepEqual(got[i].shape, r.shape, `${what} ${ds}: output '${info.name}' shape`);
      const dGraph = worst(got[i].toArray(), r.data);
      assert.ok(dGraph <= TOL, `${what} ${ds}: output '${info.name}' differs from the graph (recur's interpreter) by ${dGraph}`);
      const dExp = worst(got[i].toArray(), expected[i].data);
      assert.ok(dExp <= TOL, `${what} ${ds}: output '${info.name}' differs from the exporter's stored output by ${dExp}`);
    });
  }
  return { config, names: model.namedParameters().map(([n]) => n) };
}

const pipelines = manifest.cases.filter((c) => c.pipeline);

test('the corpus has pipeline cases to convert', () => {
  assert.ok(pipelines.length >= 40, `${pipelines.length} pipeline cases`);
});

for (const c of pipelines) {
  test(`converts ${c.name}: outputs equal the graph's, layers as the manifest describes`, () => {
    const { config, names } = checkAgainstGraph(join(ROOT, c.name), c.name);
    const L = c.layers;
    const recs = config.steps.filter((s) => s.op === 'recurrent');
    assert.equal(recs.length, 1, 'one recurrent module');
    const r = recs[0] as Extract<PipelineConfig['steps'][number], { op: 'recurrent' }>;
    assert.equal(r.cell, RECUR_CELL[L.kind]);
    assert.equal(r.numLayers, L.numLayers);
    assert.equal(r.bidirectional, L.bidirectional);
    assert.equal(r.hiddenSize, L.hiddenSize);
    assert.equal(r.inputSize, L.inputSize);
    assert.equal(config.batchFirst, L.batchFirst);
    assert.equal(config.input, L.embedding ? 'ids' : 'features');
    const emb = config.steps.find((s) => s.op === 'embedding');
    assert.deepEqual(emb && emb.op === 'embedding' ? { numEmbeddings: emb.numEmbeddings, dim: emb.embeddingDim } : null, L.embedding);
    assert.equal(config.stateInputs.length > 0, L.initialState);
    if (c.source === 'pytorch') {
      // PyTorch's state_dict names: the module scope the exporter kept, PyTorch's parameter names
      const D = L.bidirectional ? 2 : 1;
      for (let l = 0; l < L.numLayers; l++) {
        for (let d = 0; d < D; d++) {
          const sfx = `_l${l}${d ? '_reverse' : ''}`;
          assert.ok(names.includes(`${r.name}.weight_ih${sfx}`) && names.includes(`${r.name}.weight_hh${sfx}`), `${c.name}: ${r.name}.weight_ih${sfx} in ${names.join(', ')}`);
        }
      }
    }
  });
}

test('graphs that are not recurrent pipelines are refused naming the node and why; any that convert are exact', () => {
  const refused: Record<string, string> = {};
  for (const c of manifest.cases.filter((e) => !e.pipeline)) {
    try {
      convertOnnx(readFileSync(join(ROOT, c.name, 'model.onnx')));
    } catch (e) {
      assert.ok(e instanceof OnnxConvertError, `${c.name}: ${String(e)}`);
      refused[c.name] = e.message;
      continue;
    }
    // a Keras-shaped graph that still maps onto PyTorch layers: then it must be exact
    checkAgainstGraph(join(ROOT, c.name), c.name);
  }
  assert.ok(Object.keys(refused).length >= 5, `refused: ${Object.keys(refused).join(', ')}`);
  for (const [name, msg] of Object.entries(refused)) assert.match(msg, /^(node '[^']+' \(\w+\): |output |input |the graph )/, `${name}: ${msg}`);
  const reason = (prefix: string): string => Object.entries(refused).find(([n]) => n.startsWith(prefix))?.[1] ?? '';
  assert.match(reason('keras_gru_return_sequences'), /\(GRU\): has linear_before_reset = 0/);
  assert.match(reason('keras_gru_masking'), /\(Equal\): is not a step of a convertible recurrent pipeline/);
  assert.match(reason('keras_lstm_go_backwards'), /\(Slice\): .*reverses/);
});

test('refusals of recurrent nodes without PyTorch semantics and of graphs with no recurrent layer', () => {
  // a PyTorch export, changed one attribute at a time
  const refuseEdited = (kind: string, edit: (n: NodeProto) => void, re: RegExp): void => {
    const c = pipelines.find((e) => e.source === 'pytorch' && e.layers.kind === kind && !e.layers.bidirectional)!;
    const proto = decodeModelProto(readFileSync(join(ROOT, c.name, 'model.onnx')));
    const node = proto.graph!.node!.find((n) => n.op_type === (kind.startsWith('RNN') ? 'RNN' : kind))!;
    edit(node);
    assert.throws(() => convertOnnx(proto), (e: unknown) => e instanceof OnnxConvertError && re.test(e.message) && e.node === node.name, `${kind}: ${re}`);
  };
  const setAttr = (n: NodeProto, a: AttributeProto): void => {
    n.attribute = [...(n.attribute ?? []).filter((x) => x.name !== a.name), a];
  };
  refuseEdited('GRU', (n) => setAttr(n, { name: 'linear_before_reset', type: AttrType.INT, i: 0 }), /\(GRU\): has linear_before_reset = 0/);
  refuseEdited('LSTM', (n) => setAttr(n, { name: 'clip', type: AttrType.FLOAT, f: 3 }), /\(LSTM\): clips its cell pre-activations/);
  refuseEdited('LSTM', (n) => setAttr(n, { name: 'input_forget', type: AttrType.INT, i: 1 }), /input_forget = 1/);
  refuseEdited('RNN_TANH', (n) => setAttr(n, { name: 'direction', type: AttrType.STRING, s: new TextEncoder().encode('reverse') }), /direction 'reverse'/);
  refuseEdited('RNN_TANH', (n) => setAttr(n, { name: 'activations', type: AttrType.STRINGS, strings: [new TextEncoder().encode('Sigmoid')] }), /activations \[Sigmoid\]/);
  // weights that are graph inputs, not stored (the ONNX backend test style)
  assert.throws(() => convertOnnx(readFileSync(join(ONNX_FIXTURES, 'test_gru_opset7_random', 'model.onnx'))), OnnxConvertError);
  // lengths: not a pipeline input the converter takes
  const rnn = new LSTM({ inputSize: 3, hiddenSize: 3 });
  const withLengths = new (class extends Module {
    rnn = this.registerModule('rnn', rnn);
    fc = this.registerModule('fc', new Linear(3, 2));
  })();
  assert.throws(() => convertOnnx(exportOnnx(withLengths, { steps: ['rnn', 'fc'], lengths: true })), /input 'lengths' is not a float \[L·D, B, H\] initial state/);
  // no recurrent node on the path
  const onlyLinear = new (class extends Module {
    fc = this.registerModule('fc', new Linear(3, 2));
  })();
  assert.throws(() => convertOnnx(exportOnnx(onlyLinear, { steps: ['fc'] })), /no RNN, GRU or LSTM node/);
});

/** A recur classifier and tagger exported by recur and converted back: the same parameters, bit for bit. */
test('recur → exportOnnx → convertOnnx gives back the same parameters and outputs', () => {
  const rng = new Rng(3);
  const cls = new (class extends Module {
    embedding = this.registerModule('embedding', new Embedding(9, 4, { rng }));
    gru = this.registerModule('gru', new GRU({ inputSize: 4, hiddenSize: 5, numLayers: 2, bidirectional: true, rng }));
    fc = this.registerModule('fc', new Linear(10, 3, { rng }));
  })();
  // a head that is an nn.Sequential: nested names head.0, head.2
  const mlp = new (class extends Module {
    embedding = this.registerModule('embedding', new Embedding(9, 4, { rng }));
    lstm = this.registerModule('lstm', new LSTM({ inputSize: 4, hiddenSize: 5, rng }));
    head = this.registerModule('head', new Sequential(new Linear(5, 6, { rng }), new Lambda(relu, 'relu'), new Linear(6, 3, { rng })));
  })();
  const cases: [string, Module, Parameters<typeof exportOnnx>[1]][] = [
    ['nested MLP head', mlp, { steps: ['embedding', 'lstm', { op: 'finalState' }, 'head.0', { op: 'relu' }, 'head.2', { op: 'logSoftmax' }] }],
    ['per-step MLP head', mlp, { steps: ['embedding', 'lstm', 'head.0', { op: 'relu' }, 'head.2'], batchFirst: true }],
    ['final state + softmax', cls, { steps: ['embedding', 'gru', { op: 'finalState' }, 'fc', { op: 'softmax' }] }],
    ['mean over time + logSoftmax, batch-first', cls, { steps: ['embedding', 'gru', { op: 'meanOverTime' }, 'fc', { op: 'logSoftmax' }], batchFirst: true }],
    ['per-step tagger', cls, { steps: ['embedding', 'gru', 'fc'] }],
    ['with streaming state', cls, { steps: ['embedding', 'gru', 'fc'], state: true }],
  ];
  for (const [what, module, spec] of cases) {
    const bytes = exportOnnx(module, spec);
    const { model, config } = convertOnnx(bytes);
    const want = new Map(module.namedParameters().map(([n, t]) => [n, t.toArray()]));
    const got = model.namedParameters();
    assert.deepEqual(got.map(([n]) => n).sort(), [...want.keys()].sort(), `${what}: names`);
    for (const [n, t] of got) assert.deepEqual(Array.from(t.toArray()), Array.from(want.get(n)!), `${what}: ${n}`);
    // and the forward equals the graph's
    const graph = loadOnnx(bytes);
    const ids = Array.from({ length: 12 }, (_, i) => (i * 5) % 9);
    const inputs: OnnxTensor[] = graph.inputs.map((info, i) => (i === 0
      ? { dtype: 'int64', shape: [4, 3], data: Float64Array.from(ids) }
      : { dtype: 'float32', shape: [4, 3, 5], data: Float32Array.from({ length: 60 }, (_, k) => Math.sin(k)) }));
    const out = runConverted(model, inputs);
    const ref = graph.run(Object.fromEntries(graph.inputs.map((info, i) => [info.name, inputs[i]])));
    graph.outputs.forEach((o, i) => assert.ok(worst(out[i].toArray(), ref[o.name].data) <= TOL, `${what}: output ${o.name}`));
    assert.equal(config.outputs.length, graph.outputs.length);
  }
});

test('a converted model fine-tunes: the loss falls, and its file loads back for training', () => {
  // a PyTorch GRU classifier (embedding → bidirectional GRU → final states → Linear)
  const name = pipelines.find((c) => c.source === 'pytorch' && c.layers.embedding && c.layers.head === 'final_states')?.name;
  assert.ok(name, 'a PyTorch classifier in the corpus');
  const { model, config } = convertOnnx(readFileSync(join(ROOT, name, 'model.onnx')));
  const x = readPb(numbered(join(ROOT, name, 'test_data_set_0'), 'input')[0]);
  const ids: TokenIds = { ids: x.data, shape: x.shape };
  const B = config.batchFirst ? x.shape[0] : x.shape[1];
  const targets = Array.from({ length: B }, (_, b) => b % 2);
  const opt = new Adam(model.parameters(), { lr: 0.05 });
  model.train();
  const losses: number[] = [];
  for (let step = 0; step < 8; step++) {
    model.zeroGrad();
    const loss = crossEntropy(model.forward(ids), targets);
    backward(loss);
    opt.step();
    losses.push(loss.item());
  }
  assert.ok(losses[losses.length - 1] < losses[0] * 0.8, `loss ${losses.map((l) => l.toFixed(4)).join(' → ')}`);

  // the model file: config + PyTorch names, loads into a model rebuilt from its config
  const dir = mkdtempSync(join(tmpdir(), 'recur-convert-'));
  try {
    const path = join(dir, 'm.safetensors');
    saveModel(path, model, { config });
    const file = loadModelFile(path);
    const again = PipelineModel.fromConfig(file.config);
    loadModelInto(again, path);
    model.eval();
    again.eval();
    const a = noGrad(() => model.forward(ids).toArray()), b = noGrad(() => again.forward(ids).toArray());
    assert.deepEqual(Array.from(b), Array.from(a));
    // and it keeps training from there
    const opt2 = new Adam(again.parameters(), { lr: 0.05 });
    again.train();
    const l0 = crossEntropy(again.forward(ids), targets);
    backward(l0);
    opt2.step();
    again.zeroGrad();
    const l1 = crossEntropy(again.forward(ids), targets);
    assert.ok(l1.item() < l0.item(), `after the file round trip the loss falls: ${l0.item()} → ${l1.item()}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a converted sequence model (y, h_n) fine-tunes on its sequence output', () => {
  const name = pipelines.find((c) => c.source === 'pytorch' && c.layers.head === 'none' && c.layers.kind === 'LSTM')?.name;
  assert.ok(name);
  const { model } = convertOnnx(readFileSync(join(ROOT, name, 'model.onnx')));
  const x = readPb(numbered(join(ROOT, name, 'test_data_set_0'), 'input')[0]);
  const xt = tensor(x.data, x.shape);
  const y0 = noGrad(() => model.forward(xt));
  const target = tensor(Array.from({ length: y0.size }, (_, i) => Math.cos(i) * 0.5), y0.shape);
  const opt = new Adam(model.parameters(), { lr: 0.03 });
  const losses: number[] = [];
  for (let step = 0; step < 8; step++) {
    model.zeroGrad();
    const loss = mseLoss(model.forward(xt), target);
    backward(loss);
    opt.step();
    losses.push(loss.item());
  }
  assert.ok(losses[losses.length - 1] < losses[0] * 0.8, `loss ${losses.map((l) => l.toFixed(4)).join(' → ')}`);
});

test('recur import MODEL.onnx -o OUT writes a model file that recur info reads; unconvertible graphs are refused with the reason', async () => {
  const name = pipelines.find((c) => c.source === 'pytorch' && c.layers.embedding)!.name;
  const dir = mkdtempSync(join(tmpdir(), 'recur-convert-cli-'));
  const io = (): { io: { out: (t: string) => void; err: (t: string) => void }; text: () => string } => {
    let s = '';
    return { io: { out: (t) => void (s += t), err: (t) => void (s += t) }, text: () => s };
  };
  try {
    const out = join(dir, 'm.safetensors');
    const a = io();
    assert.equal(await importCommand([join(ROOT, name, 'model.onnx'), '-o', out], a.io), 0);
    assert.match(a.text(), /a recurrent pipeline, \d+ parameters/);
    assert.match(a.text(), /wrote /);
    const info = readModelInfo(out);
    assert.equal((info.config as { arch: string }).arch, 'pipeline');
    assert.ok(info.tensors.some((t) => /\.weight_ih_l0$/.test(t.name)));
    assert.equal(info.metadata['recur.imported_from'], 'model.onnx');
    // refused: a Keras masking graph
    const bad = manifest.cases.find((c) => !c.pipeline && c.name.includes('masking'))!.name;
    await assert.rejects(importCommand([join(ROOT, bad, 'model.onnx'), '-o', join(dir, 'bad.safetensors')], io().io), /cannot convert: node '[^']+' \(Equal\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

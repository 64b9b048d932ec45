import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, mkdtempSync, copyFileSync, rmSync, mkdirSync, writeFileSync, symlinkSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { loadKerasModel, parseKerasModel, KerasImportError, type KerasLoadOptions } from '../src/interop/keras-file.ts';
import { LimitError } from '../src/io/limits.ts';

const ROOT = join('test', 'fixtures', 'keras');
const CASES = readdirSync(ROOT, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

interface IO {
  source: string;
  input: { shape: number[]; data: number[] };
  output: { shape: number[]; data: number[] };
}
const readIO = (c: string): IO => JSON.parse(readFileSync(join(ROOT, c, 'io.json'), 'utf8')) as IO;

function maxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Parse a fixture's model.json (optionally edited) with its shards (optionally replaced). */
function parseEdited(c: string, edit: (j: any) => void = () => {}, shards: Record<string, Uint8Array | null> = {}, opts: KerasLoadOptions = {}) {
  const j = JSON.parse(readFileSync(join(ROOT, c, 'model.json'), 'utf8'));
  edit(j);
  const read = (p: string): Uint8Array => {
    if (p in shards) {
      const s = shards[p];
      if (s === null) throw new KerasImportError(`weight shard '${p}' is missing`);
      return s;
    }
    return readFileSync(join(ROOT, c, p));
  };
  return parseKerasModel(JSON.stringify(j), read, opts, `${c}/model.json`);
}

test('there are fixtures for every layer kind and both GRU conventions', () => {
  assert.ok(CASES.length >= 14, `found ${CASES.length} cases`);
  const all = CASES.map((c) => readFileSync(join(ROOT, c, 'model.json'), 'utf8')).join('\n');
  for (const s of ['"Embedding"', '"SimpleRNN"', '"LSTM"', '"GRU"', '"Dense"', '"Bidirectional"', '"TimeDistributed"', '"Dropout"', '"reset_after": true', '"reset_after": false', '"go_backwards": true', '"hard_sigmoid"']) {
    assert.ok(all.includes(s), `no fixture has ${s}`);
  }
});

for (const c of CASES) {
  test(`fixture ${c} reproduces its reference output (1e-5), fused and reference paths`, () => {
    const io = readIO(c);
    for (const forceReference of [false, true]) {
      const m = loadKerasModel(join(ROOT, c, 'model.json'), { forceReference });
      const y = m.predict(io.input);
      assert.deepEqual(y.shape, io.output.shape);
      const e = maxErr(y.data, io.output.data);
      assert.ok(e < 1e-5, `${c} (${forceReference ? 'reference' : 'default'} path): max abs error ${e} vs ${io.source}`);
    }
  });
}

test('fused float32 layers also match within 1e-5', () => {
  for (const c of ['lstm_sigmoid_seq_td_softmax', 'gru_reset_after_seq', 'embedding_bilstm_concat_td']) {
    const io = readIO(c);
    const y = loadKerasModel(join(ROOT, c, 'model.json'), { dtype: 'float32' }).predict(io.input);
    assert.ok(maxErr(y.data, io.output.data) < 1e-5, c);
  }
});

test('engines: PyTorch-expressible layers run fused, the rest on the Keras reference', () => {
  const eng = (c: string): (string | undefined)[] => loadKerasModel(join(ROOT, c, 'model.json')).layers.map((l) => l.engine);
  assert.deepEqual(eng('gru_reset_after_seq'), ['fused', undefined]);
  assert.deepEqual(eng('gru_reset_before_sigmoid_seq'), ['reference', undefined, undefined]);
  assert.deepEqual(eng('lstm_sigmoid_seq_td_softmax'), ['fused', undefined]);
  assert.deepEqual(eng('lstm_hard_sigmoid_backwards_last'), ['reference', undefined]);
  assert.deepEqual(eng('simplernn_relu_backwards_last'), ['fused', undefined]);
});

test('GRU conventions: reset_after=true needs a [2, 3H] bias, reset_after=false a [3H] one', () => {
  assert.throws(
    () => parseEdited('gru_reset_after_seq', (j) => { j.modelTopology.config.layers[0].config.reset_after = false; }),
    (e: Error) => e instanceof KerasImportError && /layer 'gru'.*bias.*\[2, 12\].*needs \[12\]/.test(e.message),
  );
  assert.throws(
    () => parseEdited('gru_reset_before_sigmoid_seq', (j) => { j.modelTopology.config.layers[0].config.reset_after = true; }),
    /bias.*has shape \[12\].*needs \[2, 12\]/,
  );
  // an absent reset_after means the Keras 2.3+/3 default, true
  const m = parseEdited('gru_reset_after_seq', (j) => { delete j.modelTopology.config.layers[0].config.reset_after; });
  const io = readIO('gru_reset_after_seq');
  assert.ok(maxErr(m.predict(io.input).data, io.output.data) < 1e-5);
});

test('hard_sigmoid follows keras_version, and the hardSigmoid option overrides it', () => {
  const c = 'lstm_hard_sigmoid_keras3_seq';
  const io = readIO(c);
  const k3 = loadKerasModel(join(ROOT, c, 'model.json'));
  assert.equal(k3.hardSigmoid, 'keras3');
  assert.match(k3.summary, /Keras 3/);
  const k2 = loadKerasModel(join(ROOT, c, 'model.json'), { hardSigmoid: 'keras2' });
  assert.equal(k2.hardSigmoid, 'keras2');
  assert.ok(maxErr(k2.predict(io.input).data, io.output.data) > 1e-3, 'the two conventions should differ on this fixture');
  assert.equal(loadKerasModel(join(ROOT, 'lstm_hard_sigmoid_backwards_last', 'model.json')).hardSigmoid, 'keras2');
});

test('summary lists layers, shapes, parameter counts', () => {
  const m = loadKerasModel(join(ROOT, 'embedding_bilstm_concat_td', 'model.json'));
  assert.equal(m.layers.length, 3);
  assert.deepEqual(m.layers.map((l) => l.outputShape), [[null, 6, 3], [null, 6, 6], [null, 6, 4]]);
  assert.equal(m.numParameters, 30 + 2 * (4 * 3 * 3 + 4 * 3 * 3 + 4 * 3) + (6 * 4 + 4));
  assert.match(m.summary, /Bidirectional\(LSTM\(units=3.*merge_mode=concat\)/);
  assert.match(m.summary, /total: 226 parameters/);
});

// ---- malformed files ---------------------------------------------------------------------------------

const SHARD = 'group1-shard1of1.bin';

test('malformed model.json: not JSON, no topology, not Sequential, no manifest', () => {
  assert.throws(() => parseKerasModel('{nope', () => new Uint8Array()), /is not valid JSON/);
  assert.throws(() => parseEdited('simplernn_tanh_seq', (j) => { delete j.modelTopology; }), /'modelTopology' is missing/);
  assert.throws(() => parseEdited('simplernn_tanh_seq', (j) => { j.modelTopology.class_name = 'Functional'; }), /"Functional"; only Sequential models are supported/);
  assert.throws(() => parseEdited('simplernn_tanh_seq', (j) => { delete j.weightsManifest; }), /'weightsManifest' is missing/);
  assert.throws(() => parseEdited('simplernn_tanh_seq', (j) => { j.modelTopology.config.layers[0] = { class_name: 'SimpleRNN' }; }), /layer 0: expected \{class_name, config\}/);
  assert.throws(() => parseEdited('simplernn_tanh_seq', (j) => { j.weightsManifest[0].weights[0].dtype = 'int8'; }), /dtype int8; only float32/);
});

test('missing shard file is a clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keras-'));
  try {
    copyFileSync(join(ROOT, 'simplernn_tanh_seq', 'model.json'), join(dir, 'model.json'));
    assert.throws(() => loadKerasModel(join(dir, 'model.json')), (e: Error) => e instanceof KerasImportError && /weight shard 'group1-shard1of1\.bin' is missing/.test(e.message));
    assert.throws(() => loadKerasModel(join(dir, 'nothing.json')), /does not exist/);
    // second shard of a two-shard group missing
    copyFileSync(join(ROOT, 'embedding_bilstm_concat_td', 'model.json'), join(dir, 'model.json'));
    copyFileSync(join(ROOT, 'embedding_bilstm_concat_td', 'group1-shard1of2.bin'), join(dir, 'group1-shard1of2.bin'));
    assert.throws(() => loadKerasModel(join(dir, 'model.json')), /'group1-shard2of2\.bin' is missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('short or long shard: sizes must add up', () => {
  const bytes = readFileSync(join(ROOT, 'simplernn_tanh_seq', SHARD));
  assert.throws(() => parseEdited('simplernn_tanh_seq', undefined, { [SHARD]: bytes.subarray(0, bytes.length - 4) }), /hold fewer bytes than the 168 bytes .* the listed weights need.*short or missing/);
  const long = new Uint8Array(bytes.length + 8);
  long.set(bytes);
  assert.throws(() => parseEdited('simplernn_tanh_seq', undefined, { [SHARD]: long }), /hold more bytes than the 168 bytes/);
});

test('weights: missing, unused, or inconsistent with the layer configuration', () => {
  // a weight named in the topology but absent from the manifest (renamed, so the sizes still add up)
  assert.throws(
    () => parseEdited('simplernn_tanh_seq', (j) => { j.weightsManifest[0].weights[1].name = 'other/recurrent_kernel'; }),
    /layer '[^']+': weight 'recurrent_kernel' is missing from the weightsManifest/,
  );
  assert.throws(
    () => parseEdited('simplernn_tanh_seq', (j) => { j.weightsManifest[0].weights.push({ name: 'extra/w', shape: [0], dtype: 'float32' }); }),
    /weights in the manifest that no layer uses: extra\/w/,
  );
  // units in the topology disagree with the stored kernel
  assert.throws(
    () => parseEdited('lstm_sigmoid_seq_td_softmax', (j) => { j.modelTopology.config.layers[0].config.units = 3; }),
    /weight '[^']*kernel' has shape \[3, 16\], but the layer's configuration needs \[3, 12\]/,
  );
  // manifest shape changed (same size): transposed kernel
  assert.throws(
    () => parseEdited('simplernn_tanh_seq', (j) => { j.weightsManifest[0].weights[0].shape = [4, 3]; }),
    /has shape \[4, 3\], but the layer's configuration needs \[3, 4\]/,
  );
  // an Embedding whose table does not match input_dim
  assert.throws(() => parseEdited('embedding_bilstm_concat_td', (j) => { j.modelTopology.config.layers[0].config.input_dim = 11; }), /embeddings.*\[10, 3\].*needs \[11, 3\]/);
});

test('layer configs: a value of the wrong form names the layer, the key, the form and the value', () => {
  const cfg = (fixture: string, at: (layers: any[]) => Record<string, unknown>, key: string, v: unknown) => () =>
    parseEdited(fixture, (j) => { at(j.modelTopology.config.layers)[key] = v; });
  assert.throws(cfg('simplernn_tanh_seq', (l) => l[0].config, 'units', 0), /layer 'simple_rnn_SimpleRNN\d+': 'units' must be a positive integer, got 0$/);
  assert.throws(cfg('simplernn_tanh_seq', (l) => l[0].config, 'units', '4'), /'units' must be a positive integer, got "4"$/);
  assert.throws(cfg('simplernn_tanh_seq', (l) => l[1].config, 'units', 2.5), /layer 'dense_Dense\d+': 'units' must be a positive integer, got 2\.5$/);
  assert.throws(cfg('simplernn_tanh_seq', (l) => l[1].config, 'units', true), /'units' must be a positive integer, got true$/);
  assert.throws(cfg('gru_reset_before_sigmoid_seq', (l) => l[0].config, 'reset_after', 'yes'), /'reset_after' must be true or false, got "yes"$/);
  assert.throws(cfg('embedding_bilstm_concat_td', (l) => l[0].config, 'output_dim', -3), /'output_dim' must be a positive integer, got -3$/);
  assert.throws(cfg('embedding_bilstm_concat_td', (l) => l[0].config, 'input_dim', null), /'input_dim' must be a positive integer, got null$/);
  // a weight shape of the wrong form is a manifest error, before any shard is read
  assert.throws(() => parseEdited('simplernn_tanh_seq', (j) => { j.weightsManifest[0].weights[0].shape = [3, -4]; }), /weightsManifest\[0\]\.weights\[0\] must be \{name, shape: \[non-negative integers\], dtype\}/);
  assert.throws(() => parseEdited('simplernn_tanh_seq', (j) => { j.weightsManifest[0].weights[0].shape = [3, 2 ** 60]; }), /weights\[0\] must be \{name, shape/);
});

test('unsupported layers and options name the layer and the option', () => {
  assert.throws(() => parseEdited('simplernn_tanh_seq', (j) => { j.modelTopology.config.layers[1].class_name = 'Conv1D'; }), /layer 'dense_Dense\d+': unsupported layer type Conv1D/);
  assert.throws(() => parseEdited('simplernn_tanh_seq', (j) => { j.modelTopology.config.layers[0].config.return_state = true; }), /layer 'simple_rnn_SimpleRNN\d+': unsupported option return_state=true/);
  assert.throws(() => parseEdited('simplernn_tanh_seq', (j) => { j.modelTopology.config.layers[0].config.stateful = true; }), /unsupported option stateful=true/);
  assert.throws(() => parseEdited('simplernn_tanh_seq', (j) => { j.modelTopology.config.layers[0].config.activation = 'elu'; }), /unsupported activation "elu"/);
  assert.throws(() => parseEdited('gru_reset_before_sigmoid_seq', (j) => { j.modelTopology.config.layers[0].config.recurrent_activation = 'softmax'; }), /unsupported recurrent_activation "softmax"/);
  assert.throws(() => parseEdited('bigru_sum_seq', (j) => { j.modelTopology.config.layers[0].config.merge_mode = null; }), /layer 'bidirectional_Bidirectional\d+': unsupported option merge_mode=null/);
  assert.throws(() => parseEdited('embedding_bilstm_concat_td', (j) => { j.modelTopology.config.layers[0].config.mask_zero = true; }), /unsupported option mask_zero=true/);
  assert.throws(() => parseEdited('lstm_sigmoid_seq_td_softmax', (j) => { j.modelTopology.config.layers[1].config.layer.class_name = 'LSTM'; }), /TimeDistributed wraps LSTM; only TimeDistributed\(Dense\) is supported \(option layer\)/);
});

test('predict validates its input', () => {
  const m = loadKerasModel(join(ROOT, 'simplernn_tanh_seq', 'model.json'));
  assert.throws(() => m.predict({ shape: [2, 5, 4], data: new Float32Array(40) }), /expects input \[null, 5, 3\], got \[2, 5, 4\]/);
  assert.throws(() => m.predict({ shape: [2, 5, 3], data: new Float32Array(29) }), /29 values do not fill shape/);
  const e = loadKerasModel(join(ROOT, 'embedding_bilstm_concat_td', 'model.json'));
  assert.throws(() => e.predict({ shape: [1, 6], data: [0, 1, 2, 3, 4, 10] }), /token id 10 at position 5 is outside \[0, 10\)/);
});

// ---- hostile model.json files ------------------------------------------------------------------------
//
// A model.json is untrusted: its manifest must not make recur read files outside its folder, read
// something that is not a regular file, or read anything before its size is checked.

/**
 * A folder `model/` holding simplernn_tanh_seq's model.json with its shard paths replaced, and
 * beside it (outside `model/`) `secret.bin`: exactly as many bytes as the weights need, so a loader
 * without containment would accept it as weights. `setup(modelDir, secret)` adds files or links.
 */
function hostile(paths: string[], setup: (modelDir: string, secret: string) => void = () => {}): { json: string; dir: string; secret: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'keras-hostile-'));
  const modelDir = join(dir, 'model');
  mkdirSync(modelDir);
  const secret = join(dir, 'secret.bin');
  writeFileSync(secret, readFileSync(join(ROOT, 'simplernn_tanh_seq', SHARD)));
  const j = JSON.parse(readFileSync(join(ROOT, 'simplernn_tanh_seq', 'model.json'), 'utf8'));
  j.weightsManifest[0].paths = paths;
  const json = join(modelDir, 'model.json');
  writeFileSync(json, JSON.stringify(j));
  setup(modelDir, secret);
  return { json, dir, secret, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const refusal = (re: RegExp) => (e: Error): boolean => {
  assert.ok(e instanceof KerasImportError, `expected a KerasImportError, got ${e.name}: ${e.message}`);
  assert.match(e.message, re);
  return true;
};

test('hostile model.json: a shard path that climbs out of the folder is refused', () => {
  const h = hostile(['../secret.bin']);
  try {
    assert.throws(() => loadKerasModel(h.json), refusal(/weight shard '\.\.\/secret\.bin' points outside the folder of the model\.json/));
    const deeper = hostile(['sub/../../secret.bin']);
    try {
      assert.throws(() => loadKerasModel(deeper.json), refusal(/weight shard 'sub\/\.\.\/\.\.\/secret\.bin' points outside/));
    } finally {
      deeper.done();
    }
  } finally {
    h.done();
  }
});

test('hostile model.json: an absolute shard path is refused, /dev/zero included', () => {
  const h = hostile([]);
  try {
    for (const p of [h.secret, '/dev/zero']) {
      const j = JSON.parse(readFileSync(h.json, 'utf8'));
      j.weightsManifest[0].paths = [p];
      writeFileSync(h.json, JSON.stringify(j));
      assert.throws(() => loadKerasModel(h.json), refusal(/is an absolute path; shard paths must be relative to the folder of the model\.json/));
    }
  } finally {
    h.done();
  }
});

test('hostile model.json: a symbolic link in the folder that leads out of it is refused', { skip: process.platform === 'win32' }, () => {
  const h = hostile([SHARD, 'zero.bin'], (dir, secret) => {
    symlinkSync(secret, join(dir, SHARD));
    symlinkSync('/dev/zero', join(dir, 'zero.bin'));
  });
  try {
    assert.throws(() => loadKerasModel(h.json), refusal(/weight shard 'group1-shard1of1\.bin' is a link that leads outside the folder/));
    const j = JSON.parse(readFileSync(h.json, 'utf8'));
    j.weightsManifest[0].paths = ['zero.bin'];
    writeFileSync(h.json, JSON.stringify(j));
    assert.throws(() => loadKerasModel(h.json), refusal(/weight shard 'zero\.bin' is a link that leads outside the folder/));
  } finally {
    h.done();
  }
  // a link that stays inside the folder is fine
  const ok = hostile(['link.bin'], (dir) => {
    writeFileSync(join(dir, 'real.bin'), readFileSync(join(ROOT, 'simplernn_tanh_seq', SHARD)));
    symlinkSync('real.bin', join(dir, 'link.bin'));
  });
  try {
    const io = readIO('simplernn_tanh_seq');
    assert.ok(maxErr(loadKerasModel(ok.json).predict(io.input).data, io.output.data) < 1e-5);
  } finally {
    ok.done();
  }
});

test('hostile model.json: a shard that is a folder or a pipe is refused by name, never read', { skip: process.platform === 'win32' }, () => {
  const h = hostile([SHARD], (dir) => mkdirSync(join(dir, SHARD)));
  try {
    assert.throws(() => loadKerasModel(h.json), refusal(/weight shard 'group1-shard1of1\.bin' is not a regular file \(a folder\)/));
  } finally {
    h.done();
  }
  // a named pipe would block a reader forever; it must be refused before it is opened for reading
  const p = hostile([SHARD], (dir) => {
    const r = spawnSync('mkfifo', [join(dir, SHARD)]);
    if (r.status !== 0) throw new Error('mkfifo failed');
  });
  try {
    assert.throws(() => loadKerasModel(p.json), refusal(/weight shard 'group1-shard1of1\.bin' is not a regular file \(a device, pipe or socket\)/));
  } finally {
    p.done();
  }
});

test('hostile model.json: shard sizes are checked before reading, and messages never give a file\'s size', () => {
  // a shard far longer than the weights need (inside the folder): refused without its size
  const h = hostile([SHARD], (dir) => writeFileSync(join(dir, SHARD), new Uint8Array(12345)));
  try {
    assert.throws(() => loadKerasModel(h.json), (e: Error) => {
      assert.match(e.message, /hold more bytes than the 168 bytes/);
      assert.doesNotMatch(e.message, /12345/);
      return true;
    });
    // over limits.fileBytes: a LimitError naming the shard, again without its size
    writeFileSync(join(h.dir, 'model', SHARD), readFileSync(join(ROOT, 'simplernn_tanh_seq', SHARD)));
    assert.throws(() => loadKerasModel(h.json, { limits: { fileBytes: 100 } }), (e: Error) => {
      assert.ok(e instanceof LimitError, `${e.name}: ${e.message}`);
      assert.equal(e.key, 'fileBytes');
      assert.match(e.message, /weight shard 'group1-shard1of1\.bin' is larger than the limit of 100 bytes/);
      assert.doesNotMatch(e.message, /168/);
      return true;
    });
  } finally {
    h.done();
  }
  // with a size-reporting source, a wrong size is refused before read is ever called
  const j = readFileSync(join(ROOT, 'simplernn_tanh_seq', 'model.json'), 'utf8');
  let reads = 0;
  const source = { size: () => 2 ** 20, read: () => { reads++; return new Uint8Array(0); } };
  assert.throws(() => parseKerasModel(j, source), /hold more bytes than the 168 bytes/);
  assert.equal(reads, 0);
});

test('hostile model.json: limits on the manifest and the topology apply before any shard is read', () => {
  const never = { size: (): number => assert.fail('a shard was looked at'), read: (): Uint8Array => assert.fail('a shard was read') };
  const text = (c: string, edit: (j: any) => void = () => {}): string => {
    const j = JSON.parse(readFileSync(join(ROOT, c, 'model.json'), 'utf8'));
    edit(j);
    return JSON.stringify(j);
  };
  const limitErr = (key: string, re: RegExp) => (e: Error): boolean => {
    assert.ok(e instanceof LimitError, `${e.name}: ${e.message}`);
    assert.equal(e.key, key);
    assert.match(e.message, re);
    return true;
  };
  // the fixture has 2 layers, SimpleRNN(4) and Dense(2): 5 weights, 42 parameters
  assert.throws(() => parseKerasModel(text('simplernn_tanh_seq'), never, { limits: { layers: 1 } }), limitErr('layers', /layer count of the Sequential model: 2 is over the limit of 1/));
  assert.throws(() => parseKerasModel(text('simplernn_tanh_seq'), never, { limits: { hiddenSize: 3 } }), limitErr('hiddenSize', /layer 'simple_rnn_SimpleRNN\d+': units: 4 is over the limit of 3/));
  assert.throws(() => parseKerasModel(text('simplernn_tanh_seq', (j) => { j.modelTopology.config.layers[0].config.units = 1e9; }), never), limitErr('hiddenSize', /units: 1000000000 is over the limit/));
  assert.throws(() => parseKerasModel(text('simplernn_tanh_seq'), never, { limits: { parameters: 20 } }), limitErr('parameters', /parameters of the weights in the weightsManifest/));
  assert.throws(() => parseKerasModel(text('simplernn_tanh_seq'), never, { limits: { tensors: 4 } }), limitErr('tensors', /weights listed in the weightsManifest: 5 is over the limit of 4/));
  assert.throws(() => parseKerasModel(text('simplernn_tanh_seq', (j) => { j.weightsManifest[0].weights[0].shape = [2 ** 20, 2 ** 20]; }), never), limitErr('tensorElements', /weight '[^']+kernel' of shape \[1048576, 1048576\]/));
  // an Embedding's vocabulary (input_dim), and a Bidirectional's wrapped layer
  assert.throws(() => parseKerasModel(text('embedding_bilstm_concat_td'), never, { limits: { vocab: 5 } }), limitErr('vocab', /input_dim: 10 is over the limit of 5/));
  assert.throws(() => parseKerasModel(text('embedding_bilstm_concat_td'), never, { limits: { hiddenSize: 2 } }), limitErr('hiddenSize', /over the limit of 2/));
  assert.throws(() => parseKerasModel(text('embedding_bilstm_concat_td', (j) => { j.modelTopology.config.layers[1].config.layer.config.units = 100_000; }), never), limitErr('hiddenSize', /units: 100000 is over the limit/));
  // a model.json longer than headerBytes
  assert.throws(() => parseKerasModel(text('simplernn_tanh_seq'), never, { limits: { headerBytes: 100 } }), limitErr('headerBytes', /over the limit of 100/));
});

test('hostile model.json: the file itself is size-checked and must be UTF-8', () => {
  const h = hostile([SHARD], (dir) => copyFileSync(join(ROOT, 'simplernn_tanh_seq', SHARD), join(dir, SHARD)));
  try {
    assert.throws(() => loadKerasModel(h.json, { limits: { headerBytes: 64 } }), (e: Error) => e instanceof LimitError && e.key === 'headerBytes');
    // a byte 0xFF inside a string is not UTF-8: an error, not a silent U+FFFD in the model's name
    const bytes = readFileSync(h.json);
    const at = bytes.indexOf(Buffer.from('seq_simplernn_tanh_seq'));
    assert.ok(at > 0);
    bytes[at] = 0xff;
    writeFileSync(h.json, bytes);
    assert.throws(() => loadKerasModel(h.json), refusal(/is not valid UTF-8/));
    // a model.json that is a folder
    assert.throws(() => loadKerasModel(join(h.dir, 'model')), refusal(/is not a regular file/));
  } finally {
    h.done();
  }
});

/**
 * The cell records (src/cells/spec.ts): one record per cell kind, read by the layer, the nn
 * modules, ONNX import/export and Keras import. Checks the gate layouts move blocks as the formats
 * define them, and the minimal gated unit (MGU) — the cell added through the record alone, on the
 * reference steps — against its equations and by finite differences (float64), also as a stack of
 * layers in one op (recurrentStack) with its input checks.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CELLS, cellForFormat, recurrentLayer, recurrentStack, reorderGates, type DirectionParams } from '../src/cells/recurrent.ts';
import { Rng, tensor, type Tensor } from '../src/index.ts';
import { assertClose, gradcheck, randomTensor } from './helpers/gradcheck.ts';

describe('cell records', () => {
  test('every record has one gate name per block, and foreign layouts are permutations of it', () => {
    for (const cell of Object.values(CELLS)) {
      assert.equal(cell.gates.length, cell.G, `${cell.mode}: gate names`);
      assert.equal(new Set(cell.gates).size, cell.G, `${cell.mode}: distinct gate names`);
      for (const f of [cell.onnx, cell.keras]) {
        if (f) assert.deepEqual([...f.gates].sort(), [...cell.gates].sort(), `${cell.mode}: ${f.name} gates`);
      }
      assert.equal(cell.hasCell, cell.mode === 'LSTM');
    }
  });

  test('reorderGates moves whole blocks as the formats order them (ONNX LSTM i,o,f,c; Keras GRU z,r,h)', () => {
    const H = 2, cols = 3;
    // block k of the source holds the value 10·k + j: the destination shows which block went where
    const src = (G: number): number[] => Array.from({ length: G * H * cols }, (_, i) => 10 * Math.floor(i / (H * cols)) + (i % (H * cols)));
    const blockOf = (a: ArrayLike<number>, G: number): number[] => Array.from({ length: G }, (_, k) => Math.floor(a[k * H * cols] / 10));
    const lstm = CELLS.LSTM, gru = CELLS.GRU;
    // recur i,f,g,o ← ONNX blocks i=0, f=2, c=3, o=1
    const fromOnnx = reorderGates(src(4), 'onnx', 'recur', { cell: lstm, H, cols, dst: new Float64Array(4 * H * cols) });
    assert.deepEqual(blockOf(fromOnnx, 4), [0, 2, 3, 1]);
    // recur r,z,n ← Keras blocks z=0, r=1, h=2
    const fromKeras = reorderGates(src(3), 'keras', 'recur', { cell: gru, H, cols, dst: new Float64Array(3 * H * cols) });
    assert.deepEqual(blockOf(fromKeras, 3), [1, 0, 2]);
    // within a block, rows and columns stay in place
    assertClose(fromOnnx.subarray(0, H * cols), src(4).slice(0, H * cols), { atol: 0 }, 'block contents');
  });

  test('reorderGates round trips recur → format → recur exactly, with offsets', () => {
    const rng = new Rng(3);
    for (const cell of Object.values(CELLS)) {
      for (const layout of ['onnx', 'keras'] as const) {
        if (!cell[layout]) continue;
        const H = 3, cols = 2, n = cell.G * H * cols;
        const data = Float32Array.from({ length: n + 5 }, () => rng.uniform(-1, 1));
        const there = reorderGates(data, 'recur', layout, { cell, H, cols, srcOffset: 5, dst: new Float32Array(n + 7), dstOffset: 7 });
        const back = reorderGates(there, layout, 'recur', { cell, H, cols, srcOffset: 7, dst: new Float32Array(n) });
        assert.deepEqual(back, data.subarray(5), `${cell.mode} via ${layout}`);
      }
    }
  });

  test('formats find their cells by op / layer name; MGU has no foreign layout', () => {
    assert.equal(cellForFormat('onnx', 'LSTM'), CELLS.LSTM);
    assert.equal(cellForFormat('onnx', 'RNN')?.G, 1);
    assert.equal(cellForFormat('keras', 'SimpleRNN')?.G, 1);
    assert.equal(cellForFormat('keras', 'GRU'), CELLS.GRU);
    assert.throws(() => cellForFormat('onnx', 'MGU'), /no cell kind is stored as ONNX op 'MGU' \(known: RNN, LSTM, GRU\)/);
    assert.throws(() => reorderGates([0, 0], 'recur', 'onnx', { cell: CELLS.MGU, H: 1, cols: 1, dst: [0, 0] }), /MGU has no ONNX gate layout/);
  });
});

// ---- MGU ----------------------------------------------------------------------------------------

const I = 2, H = 3;

function mguParams(rng: Rng, bias: boolean, inSize = I): DirectionParams {
  const G = CELLS.MGU.G;
  return {
    weightIh: randomTensor([G * H, inSize], rng, { requiresGrad: true }),
    weightHh: randomTensor([G * H, H], rng, { requiresGrad: true }),
    biasIh: bias ? randomTensor([G * H], rng, { requiresGrad: true }) : null,
    biasHh: bias ? randomTensor([G * H], rng, { requiresGrad: true }) : null,
  };
}

const paramList = (p: DirectionParams) => [p.weightIh, p.weightHh, ...(p.biasIh ? [p.biasIh] : []), ...(p.biasHh ? [p.biasHh] : [])];

describe('MGU (reference steps only)', () => {
  test('forward follows the MGU equations step by step, with lengths', () => {
    const rng = new Rng(11);
    const T = 4, B = 3;
    const p = mguParams(rng, true);
    const x = randomTensor([T, B, I], rng);
    const h0 = randomTensor([1, B, H], rng);
    const lengths = Int32Array.from([4, 1, 2]);
    const r = recurrentLayer('MGU', x, [p], h0, null, lengths);
    assert.equal(r.cN, null);
    const [W, U, bi, bh, X] = [p.weightIh, p.weightHh, p.biasIh!, p.biasHh!, x].map((t) => t.toArray());
    const sig = (v: number): number => 1 / (1 + Math.exp(-v));
    const y = r.y.toArray(), hN = r.hN.toArray();
    for (let b = 0; b < B; b++) {
      let h = Array.from(h0.toArray().slice(b * H, (b + 1) * H));
      for (let t = 0; t < T; t++) {
        if (t >= lengths[b]) {
          for (let j = 0; j < H; j++) assert.equal(y[(t * B + b) * H + j], 0, 'masked step outputs 0');
          continue;
        }
        // gate rows: f = 0…H−1, n = H…2H−1
        const pre = (M: ArrayLike<number>, v: ArrayLike<number>, row: number, n: number): number => {
          let s = 0;
          for (let k = 0; k < n; k++) s += M[row * n + k] * v[k];
          return s;
        };
        const xt = X.slice((t * B + b) * I, (t * B + b + 1) * I);
        const next = h.map((hj, j) => {
          const f = sig(pre(W, xt, j, I) + bi[j] + pre(U, h, j, H) + bh[j]);
          const n = Math.tanh(pre(W, xt, H + j, I) + bi[H + j] + f * (pre(U, h, H + j, H) + bh[H + j]));
          return (1 - f) * hj + f * n;
        });
        h = next;
        assertClose(y.slice((t * B + b) * H, (t * B + b + 1) * H), h, { atol: 1e-12 }, `y[${t}, ${b}]`);
      }
      assertClose(hN.slice(b * H, (b + 1) * H), h, { atol: 1e-12 }, `h_n[${b}] (state at its last step)`);
    }
  });

  let seed = 1;
  for (const bidirectional of [false, true]) {
    for (const withLengths of [false, true]) {
      for (const withState of [false, true]) {
        const name = `MGU ${bidirectional ? 'bi' : 'uni'} ${withLengths ? 'lengths' : 'full'} ${withState ? 'h0' : 'zero-state'}`;
        const s = seed++;
        test(`gradcheck ${name}`, () => {
          const rng = new Rng(200 + s);
          const T = 4, B = 3, D = bidirectional ? 2 : 1;
          const params = Array.from({ length: D }, () => mguParams(rng, true));
          const x = randomTensor([T, B, I], rng, { requiresGrad: true });
          const h0 = withState ? randomTensor([D, B, H], rng, { requiresGrad: true }) : null;
          const lengths = withLengths ? Int32Array.from([4, 1, 2]) : null;
          const inputs = [x, ...(h0 ? [h0] : []), ...params.flatMap(paramList)];
          gradcheck(() => {
            const r = recurrentLayer('MGU', x, params, h0, null, lengths);
            return [r.y, r.hN];
          }, inputs, { outputs: 2, name, atol: 1e-6, rtol: 1e-5 });
        });
      }
    }
  }

  test('gradcheck MGU without bias', () => {
    const rng = new Rng(9);
    const p = mguParams(rng, false);
    const x = randomTensor([3, 2, I], rng, { requiresGrad: true });
    gradcheck(() => {
      const r = recurrentLayer('MGU', x, [p], null, null, null);
      return [r.y, r.hN];
    }, [x, ...paramList(p)], { outputs: 2, name: 'MGU no bias', atol: 1e-6 });
  });

  test('a stack as one op (recurrentStack): the same values as layer after layer, and gradcheck', () => {
    const rng = new Rng(11);
    const layers = [mguParams(rng, true), mguParams(rng, true, H), mguParams(rng, false, H)];
    const x = randomTensor([4, 2, I], rng, { requiresGrad: true });
    const h0 = randomTensor([3, 2, H], rng, { requiresGrad: true });
    const lengths = Int32Array.from([4, 2]);
    const stack = recurrentStack('MGU', x, layers, h0, null, lengths);
    let y = x;
    const hs: number[] = [];
    layers.forEach((p, l) => {
      const r = recurrentLayer('MGU', y, [p], layerState(h0, l), null, lengths);
      y = r.y;
      hs.push(...r.hN.toArray());
    });
    assert.deepEqual(Array.from(stack.y.toArray()), Array.from(y.toArray()));
    assert.deepEqual(Array.from(stack.hN.toArray()), hs);
    gradcheck(() => {
      const r = recurrentStack('MGU', x, layers, h0, null, lengths);
      return [r.y, r.hN];
    }, [x, h0, ...layers.flatMap(paramList)], { outputs: 2, name: 'MGU stack of 3', atol: 1e-6 });
  });

  test('recurrentStack refuses what is not a unidirectional stack, naming the layer', () => {
    const rng = new Rng(12);
    const x = randomTensor([2, 1, I], rng);
    assert.throws(() => recurrentStack('MGU', x, [mguParams(rng, true)], null, null, null), /at least 2 layers, got 1/);
    assert.throws(() => recurrentStack('MGU', x, [mguParams(rng, true), { ...mguParams(rng, true, H), reverse: true }], null, null, null), /layer 1 runs in reverse/);
    assert.throws(() => recurrentStack('MGU', x, [mguParams(rng, true), mguParams(rng, true)], null, null, null), /layer 1: weight_ih must be \[6, 3\], got \[6, 2\]/);
    assert.throws(() => recurrentStack('MGU', x, [mguParams(rng, true), mguParams(rng, true, H)], randomTensor([1, 1, H], rng), null, null), /initial state h0 must be \[2, 1, 3\]/);
    assert.throws(() => recurrentStack('NOPE' as never, x, [], null, null, null), /unknown mode 'NOPE'/);
  });

  test('MGU rejects an initial cell state: the record says it has none', () => {
    const rng = new Rng(4);
    const x = randomTensor([2, 1, I], rng);
    const c0 = randomTensor([1, 1, H], rng);
    assert.throws(() => recurrentLayer('MGU', x, [mguParams(rng, true)], null, c0, null), /MGU has no cell state/);
  });
});

/** Layer l's [1, B, H] slice of a [L, B, H] state, as its own tensor (from the same values). */
function layerState(s: Tensor, l: number): Tensor {
  const [, B, Hs] = s.shape;
  return tensor(s.toArray().slice(l * B * Hs, (l + 1) * B * Hs), [1, B, Hs], { dtype: s.dtype });
}

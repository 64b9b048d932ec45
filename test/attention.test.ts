/**
 * Attention: forward values against a direct computation, masking by lengths (weights exactly 0
 * past each length, padded keys have no influence), and float64 gradient checks of every input
 * and parameter — with and without masks, and with one prepared memory reused by several steps.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Rng } from '../src/tensor/rng.ts';
import { type Shape, type Tensor } from '../src/tensor/tensor.ts';
import { AdditiveAttention, LuongAttention, makeAttention, selectMemory, type Attention } from '../src/nn/attention.ts';
import { noGrad } from '../src/autograd/tape.ts';
import { assertClose, gradcheck, randomTensor } from './helpers/gradcheck.ts';

const rng = new Rng(777);
const r = (shape: Shape): Tensor => randomTensor(shape, rng, { requiresGrad: true });

function kinds(): [string, () => Attention][] {
  return [
    ['additive', () => new AdditiveAttention({ queryDim: 3, keyDim: 4, attnDim: 5, dtype: 'float64', rng: new Rng(1) })],
    ['general', () => new LuongAttention({ queryDim: 3, keyDim: 4, dtype: 'float64', rng: new Rng(2) })],
    ['dot', () => new LuongAttention({ queryDim: 4, keyDim: 4, score: 'dot', dtype: 'float64' })],
  ];
}

/** Direct computation of the weights from the definition, for one row. */
function directWeights(att: Attention, q: number[], keys: number[][], len: number): number[] {
  const sd = att.stateDict();
  const vals = (n: string): Float64Array => sd[n].toArray() as Float64Array;
  const e = keys.map((k, s) => {
    if (s >= len) return -Infinity;
    if (att instanceof AdditiveAttention) {
      const Wq = vals('query.weight'), Wk = vals('key.weight'), bk = vals('key.bias'), v = vals('v.weight');
      let sc = 0;
      for (let a = 0; a < att.attnDim; a++) {
        let h = bk[a];
        for (let i = 0; i < q.length; i++) h += Wq[a * q.length + i] * q[i];
        for (let i = 0; i < k.length; i++) h += Wk[a * k.length + i] * k[i];
        sc += v[a] * Math.tanh(h);
      }
      return sc;
    }
    const lu = att as LuongAttention;
    if (lu.score === 'dot') return q.reduce((acc, qi, i) => acc + qi * k[i], 0);
    const Wa = vals('key.weight'); // [Dq, Dk]
    let sc = 0;
    for (let i = 0; i < q.length; i++) for (let j = 0; j < k.length; j++) sc += q[i] * Wa[i * k.length + j] * k[j];
    return sc;
  });
  const m = Math.max(...e);
  const ex = e.map((x) => Math.exp(x - m));
  const z = ex.reduce((a, b) => a + b, 0);
  return ex.map((x) => x / z);
}

describe('attention', () => {
  for (const [name, make] of kinds()) {
    test(`${name}: weights and context match the definition, masked by lengths`, () => {
      const att = make();
      const B = 3, S = 4, Dk = att.keyDim, Dq = att.queryDim;
      const keys = r([B, S, Dk]), q = r([B, Dq]);
      const lengths = [4, 1, 2];
      const { context, weights } = att.attend(q, att.prepare(keys, lengths));
      assert.deepEqual([...weights.shape], [B, S]);
      assert.deepEqual([...context.shape], [B, Dk]);
      const kv = keys.toArray(), qv = q.toArray(), w = weights.toArray(), c = context.toArray();
      for (let b = 0; b < B; b++) {
        const kb = Array.from({ length: S }, (_, s) => Array.from(kv.subarray((b * S + s) * Dk, (b * S + s + 1) * Dk)));
        const expected = directWeights(att, Array.from(qv.subarray(b * Dq, (b + 1) * Dq)), kb, lengths[b]);
        assertClose(w.subarray(b * S, (b + 1) * S), expected, 1e-12, `${name} weights row ${b}`);
        for (let s = lengths[b]; s < S; s++) assert.equal(w[b * S + s], 0, 'padded weight is exactly 0');
        const ctx = Array.from({ length: Dk }, (_, j) => kb.reduce((acc, k, s) => acc + expected[s] * k[j], 0));
        assertClose(c.subarray(b * Dk, (b + 1) * Dk), ctx, 1e-12, `${name} context row ${b}`);
      }
    });

    test(`${name}: padded keys have no influence`, () => {
      const att = make();
      const keys = r([2, 3, att.keyDim]), q = r([2, att.queryDim]);
      const a = noGrad(() => att.attend(q, att.prepare(keys, [1, 2])).context.toArray());
      const kv = keys.toArray();
      kv[(0 * 3 + 2) * att.keyDim] += 100; // row 0, position 2 (padded)
      kv[(1 * 3 + 2) * att.keyDim + 1] -= 50; // row 1, position 2 (padded)
      keys.backend.write(keys.storage, kv);
      const b = noGrad(() => att.attend(q, att.prepare(keys, [1, 2])).context.toArray());
      assertClose(b, a, 1e-14, 'context unchanged');
    });

    for (const lengths of [null, [3, 1, 2]]) {
      test(`${name}: gradcheck ${lengths ? 'with mask' : 'no mask'} (query, keys, parameters; two steps share one memory)`, () => {
        const att = make();
        const keys = r([3, 3, att.keyDim]), q1 = r([3, att.queryDim]), q2 = r([3, att.queryDim]);
        gradcheck(() => {
          const mem = att.prepare(keys, lengths);
          const o1 = att.attend(q1, mem);
          const o2 = att.attend(q2, mem);
          return [o1.context, o1.weights, o2.context];
        }, [keys, q1, q2, ...att.parameters()], { outputs: 3, name: `${name} attention`, atol: 1e-7 });
      });
    }

    test(`${name}: selectMemory gathers rows (for beam search) and keeps masks`, () => {
      const att = make();
      const keys = r([2, 3, att.keyDim]), q = r([2, att.queryDim]);
      const mem = att.prepare(keys, [3, 2]);
      const full = noGrad(() => att.attend(q, mem).weights.toArray());
      const sel = selectMemory(mem, [1, 1, 0]);
      const qs = randomTensor([3, att.queryDim], rng);
      const qv = q.toArray();
      qs.backend.write(qs.storage, [...qv.subarray(att.queryDim), ...qv.subarray(att.queryDim), ...qv.subarray(0, att.queryDim)]);
      const w = noGrad(() => att.attend(qs, sel).weights.toArray());
      assertClose(w, [...full.subarray(3, 6), ...full.subarray(3, 6), ...full.subarray(0, 3)], 1e-14, 'selected');
      assert.equal(w[2], 0);
      const q3 = r([3, att.queryDim]);
      gradcheck(() => att.attend(q3, selectMemory(att.prepare(keys, [3, 2]), [1, 0, 1])).context, [keys, q3, ...att.parameters()], { name: 'select' });
    });
  }

  test('parameter names and shapes; option errors', () => {
    const a = makeAttention('additive', 6, 8, { attnDim: 5, dtype: 'float64' });
    assert.deepEqual(a.namedParameters().map(([n, p]) => [n, [...p.shape]]), [['query.weight', [5, 6]], ['key.weight', [5, 8]], ['key.bias', [5]], ['v.weight', [1, 5]]]);
    assert.deepEqual(makeAttention('general', 6, 8).namedParameters().map(([n, p]) => [n, [...p.shape]]), [['key.weight', [6, 8]]]);
    assert.equal(makeAttention('dot', 4, 4).numParameters(), 0);
    assert.throws(() => makeAttention('dot', 3, 4), /queryDim = keyDim/);
    assert.throws(() => makeAttention('bilinear' as never, 3, 4), /'additive', 'general' or 'dot'/);
    assert.throws(() => new AdditiveAttention({ queryDim: 3, keyDim: 4, heads: 2 } as never), /unknown option 'heads'/);
    const keys = r([2, 3, 8]);
    assert.throws(() => a.prepare(keys, [0, 3]), /lengths\[0\] = 0/);
    assert.throws(() => a.prepare(keys, [4, 3]), /lengths\[0\] = 4/);
    assert.throws(() => a.prepare(r([2, 3, 7])), /keys must be \[B, S, 8\]/);
    assert.throws(() => a.attend(r([3, 6]), a.prepare(keys)), /query must be \[B = 2, 6\]/);
  });
});

/**
 * Autograd tape behaviour: accumulation, fan-out, noGrad, single-use graphs, release of
 * intermediate gradients, implicit-gradient rules, detach, multi-output nodes and deep graphs.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Tensor } from '../src/tensor/tensor.ts';
import {
  accumulateGrad, backward, gradBuffer, isGradEnabled, needsGrad, noGrad, record,
} from '../src/autograd/tape.ts';
import { add, exp, mul, sub, sum, tanh } from '../src/autograd/ops/elementwise.ts';
import { matmul } from '../src/autograd/ops/linalg.ts';
import { assertClose, t64 } from './helpers/gradcheck.ts';

const g = (t: Tensor): number[] => {
  assert.ok(t.grad, `${t.toString()} has no grad`);
  return [...t.grad.toArray()];
};

describe('tape', () => {
  test('leaf gradients accumulate across two backward calls until zeroGrad', () => {
    const x = t64([1, 2, 3], [3], true);
    const w = t64([0.5, -1, 2], [3], true);
    const run = () => backward(sum(mul(x, w)));
    run();
    assert.deepEqual(g(x), [0.5, -1, 2]);
    assert.deepEqual(g(w), [1, 2, 3]);
    run();
    assert.deepEqual(g(x), [1, -2, 4]);
    assert.deepEqual(g(w), [2, 4, 6]);
    x.zeroGrad();
    assert.equal(x.grad, null);
    run();
    assert.deepEqual(g(x), [0.5, -1, 2]);
    assert.deepEqual(g(w), [3, 6, 9]);
  });

  test('a tensor used twice gets the sum of both paths', () => {
    const x = t64([0.3, -0.7], [2], true);
    // L = Σ (x·a + tanh(x)·b): dL/dx = a + b·(1 − tanh²x)
    const a = t64([2, 3]), b = t64([-1, 4]);
    backward(sum(add(mul(x, a), mul(tanh(x), b))));
    const want = [0.3, -0.7].map((v, i) => [2, 3][i] + [-1, 4][i] * (1 - Math.tanh(v) ** 2));
    assertClose(g(x), want, 1e-15, 'two paths');

    const y = t64([1.5, -2], [2], true);
    backward(sum(mul(y, y)));
    assert.deepEqual(g(y), [3, -4]);

    // a shared intermediate used by two consumers
    const z = t64([0.1, 0.2], [2], true);
    const e = exp(z);
    backward(sum(add(mul(e, 2), mul(e, e))));
    assertClose(g(z), [0.1, 0.2].map((v) => 2 * Math.exp(v) + 2 * Math.exp(2 * v)), 1e-15, 'shared intermediate');
  });

  test('noGrad records nothing and restores the previous state', () => {
    const x = t64([1, 2], [2], true);
    assert.equal(isGradEnabled(), true);
    const y = noGrad(() => {
      assert.equal(isGradEnabled(), false);
      assert.equal(needsGrad(x), false);
      return mul(tanh(x), 3);
    });
    assert.equal(isGradEnabled(), true);
    assert.equal(y.node, null);
    assert.equal(y.requiresGrad, false);
    assert.throws(() => backward(sum(y)), /does not require grad/);
    // nested, and restored even when fn throws
    noGrad(() => noGrad(() => undefined));
    assert.equal(isGradEnabled(), true);
    assert.throws(() => noGrad(() => { throw new Error('boom'); }), /boom/);
    assert.equal(isGradEnabled(), true);
    // the value is still computed
    assertClose([...y.toArray()], [3 * Math.tanh(1), 3 * Math.tanh(2)], 1e-15, 'noGrad value');
  });

  test('backward twice through the same graph throws a clear error', () => {
    const x = t64([1, 2], [2], true);
    const h = tanh(mul(x, 2));
    const loss = sum(h);
    backward(loss);
    const first = g(x);
    assert.throws(() => backward(loss), /already backpropagated.*run the forward pass again/);
    // a new graph reusing a consumed intermediate is refused as well
    assert.throws(() => backward(sum(mul(h, 3))), /already backpropagated/);
    // the leaf gradient from the first pass was not disturbed by the refused graph's nodes
    assert.deepEqual(g(x), first);
    // a fresh forward pass works
    backward(sum(tanh(mul(x, 2))));
    assertClose(g(x), first.map((v) => 2 * v), 1e-15, 'after fresh forward');
  });

  test('a refused backward leaves leaf gradients untouched', () => {
    const x = t64([1, 2], [2], true);
    const h = tanh(x);
    backward(sum(h));
    const first = g(x);
    // the fresh mul path is processed before the consumed tanh node is reached
    assert.throws(() => backward(add(sum(h), sum(mul(x, 2)))), /already backpropagated/);
    assert.deepEqual(g(x), first);
  });

  test('intermediate gradients are released; leaves and the root keep theirs', () => {
    const x = t64([1, 2, 3], [3], true);
    const a = mul(x, 2);
    const b = tanh(a);
    const loss = sum(b);
    backward(loss);
    assert.equal(a.grad, null);
    assert.equal(b.grad, null);
    assert.ok(x.grad);
    assert.deepEqual(g(loss), [1]);
    // closures are dropped after use
    assert.equal(a.node!.backward, null);
    assert.equal(b.node!.backward, null);
    assert.equal(loss.node!.backward, null);
  });

  test('backward on a non-scalar needs an explicit gradient', () => {
    const x = t64([1, 2, 3, 4], [2, 2], true);
    const y = mul(x, x);
    assert.throws(() => backward(y), /implicit gradient only for one-element tensors.*\[2, 2\]/);
    const y2 = mul(x, x);
    assert.throws(() => backward(y2, t64([1, 1, 1])), /gradient shape \[3\] does not match tensor shape \[2, 2\]/);
    const y3 = mul(x, x);
    backward(y3, t64([1, 0, -1, 2], [2, 2]));
    assert.deepEqual(g(x), [2, 0, -6, 16]);
  });

  test('a one-element non-scalar gets the implicit gradient 1', () => {
    const x = t64([2], [1, 1], true);
    backward(mul(x, x));
    assert.deepEqual(g(x), [4]);
  });

  test('backward on something that does not require grad throws', () => {
    assert.throws(() => backward(t64([1])), /does not require grad/);
    assert.throws(() => backward(sum(mul(t64([1, 2]), 2))), /does not require grad/);
  });

  test('backward on a leaf sets its gradient', () => {
    const x = t64([5], [], true);
    backward(x);
    assert.deepEqual(g(x), [1]);
  });

  test('detach cuts the graph', () => {
    const x = t64([0.5, -1.5], [2], true);
    const d = x.detach();
    assert.equal(d.requiresGrad, false);
    assert.equal(d.node, null);
    assert.deepEqual([...d.toArray()], [0.5, -1.5]);
    // L = Σ x · stopgrad(x): dL/dx = x, not 2x
    backward(sum(mul(x, d)));
    assert.deepEqual(g(x), [0.5, -1.5]);
    // detaching an intermediate stops the gradient there
    const w = t64([1, 2], [2], true);
    const h = mul(w, 3);
    const loss = sum(add(mul(h.detach(), w), h));
    backward(loss);
    assert.deepEqual(g(w), [3 + 3, 6 + 3]);
    // a graph built only on a detached tensor does not require grad
    assert.equal(tanh(x.detach()).requiresGrad, false);
  });

  test('inputs without requiresGrad get no gradient', () => {
    const x = t64([1, 2], [2], true);
    const c = t64([3, 4], [2]);
    backward(sum(mul(x, c)));
    assert.equal(c.grad, null);
    const A = t64([1, 2, 3, 4], [2, 2]);
    const B = t64([1, 0, 0, 1], [2, 2], true);
    backward(sum(matmul(A, B)));
    assert.equal(A.grad, null);
    assert.deepEqual(g(B), [4, 4, 6, 6]);
  });

  test('multi-output node: only outputs with a gradient contribute', () => {
    const x = t64([1, 2], [2], true);
    const mk = () => {
      // (u, v) = (2x, 3x) as one node
      const u = new Tensor(x.backend.fromArray([2, 4], 'float64'), [2]);
      const v = new Tensor(x.backend.fromArray([3, 6], 'float64'), [2]);
      let calls = 0;
      record('twoOut', [x], [u, v], () => {
        calls++;
        const dx = gradBuffer(x);
        if (u.grad) x.backend.axpy(2, 2, u.grad.storage, 0, dx, 0);
        if (v.grad) x.backend.axpy(2, 3, v.grad.storage, 0, dx, 0);
      });
      return { u, v, calls: () => calls };
    };
    const a = mk();
    assert.equal(a.u.node, a.v.node);
    assert.ok(a.u.requiresGrad && a.v.requiresGrad);
    backward(sum(a.v));
    assert.equal(a.calls(), 1);
    assert.deepEqual(g(x), [3, 3]);
    x.zeroGrad();
    const b = mk();
    backward(sum(add(b.u, mul(b.v, 10))));
    assert.equal(b.calls(), 1);
    assert.deepEqual(g(x), [32, 32]);
  });

  test('accumulateGrad copies unless the storage is owned, and ignores tensors without requiresGrad', () => {
    const t = t64([0, 0], [2], true);
    const s = t.backend.fromArray([1, 2], 'float64');
    accumulateGrad(t, s, false);
    t.backend.write(s, [100, 100]);
    assert.deepEqual(g(t), [1, 2]);
    accumulateGrad(t, s, false);
    assert.deepEqual(g(t), [101, 102]);
    const u = t64([0], [1]);
    accumulateGrad(u, t.backend.fromArray([1], 'float64'), true);
    assert.equal(u.grad, null);
  });

  test('a deep chain backpropagates without stack overflow', () => {
    const x = t64([0.5], [1], true);
    let h: Tensor = x;
    const n = 20000;
    for (let i = 0; i < n; i++) h = mul(h, 1);
    backward(sum(h));
    assert.deepEqual(g(x), [1]);
    // and a long recurrence with real work: h_{t+1} = tanh(h_t) − 0.1
    const y = t64([0.8], [1], true);
    let s: Tensor = y;
    let v = 0.8;
    let dv = 1;
    for (let i = 0; i < 500; i++) {
      s = sub(tanh(s), 0.1);
      const tv = Math.tanh(v);
      dv *= 1 - tv * tv;
      v = tv - 0.1;
    }
    backward(sum(s));
    assertClose(g(y), [dv], 1e-12, 'long recurrence');
  });
});

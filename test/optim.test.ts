import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  Adagrad, Adam, AdamW, Optimizer, RMSProp, SGD, StateDictError,
  type OptimizerState, type Params,
} from '../src/train/optim.ts';
import { Tensor, tensor } from '../src/tensor/tensor.ts';
import type { DType, Storage } from '../src/backend/interface.ts';
import { JsBackend } from '../src/backend/js.ts';

// ---------------------------------------------------------------------------
// fixture: PyTorch trajectories (scripts/make_optim_fixtures.py)

interface ParamFixture { shape: number[]; init: number[]; a: number[]; c: number[] }
interface OptCase {
  name: string;
  type: string;
  options: Record<string, unknown>;
  lrs: number[];
  trajectory: Record<string, number[]>[];
  state: Record<string, { step: number; buffers: Record<string, number[]> }>;
}
interface Fixture {
  steps: number;
  skipStep: number;
  problem: Record<string, ParamFixture>;
  optimizers: OptCase[];
}

const fx = JSON.parse(readFileSync(new URL('./fixtures/torch_optim.json', import.meta.url), 'utf8')) as Fixture;
const NAMES = Object.keys(fx.problem); // ['w', 'b']

type AnyOptimizer = Optimizer<{ lr: number }>;

function make(type: string, params: Params, options: Record<string, unknown>): AnyOptimizer {
  switch (type) {
    case 'SGD': return new SGD(params, options as never);
    case 'RMSProp': return new RMSProp(params, options);
    case 'Adagrad': return new Adagrad(params, options);
    case 'Adam': return new Adam(params, options as never);
    case 'AdamW': return new AdamW(params, options as never);
    default: throw new Error(`no optimizer ${type}`);
  }
}

function makeParams(dtype: DType = 'float64', backend?: JsBackend): Tensor[] {
  return NAMES.map((n) => {
    const f = fx.problem[n];
    const t = tensor(f.init, f.shape, { dtype, requiresGrad: true, backend });
    t.name = n;
    return t;
  });
}

/** grad = a ∘ (p − c), the quadratic's gradient, computed on the host; `skip` names params left without one. */
function setGrads(ps: Tensor[], skip: (name: string) => boolean): void {
  ps.forEach((p, k) => {
    const name = NAMES[k];
    if (skip(name)) {
      p.grad = null;
      return;
    }
    const f = fx.problem[name];
    const v = p.toArray();
    const g = Array.from(v, (x, i) => f.a[i] * (x - f.c[i]));
    p.grad = tensor(g, p.shape, { dtype: p.dtype, backend: p.backend });
  });
}

const fixtureSkip = (step: number) => (name: string): boolean => name === 'b' && step === fx.skipStep;

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= tol * Math.max(1, Math.abs(expected[i])))) {
      assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (error ${err})`);
    }
  }
}

/** Run `steps` fixture steps from `from` (lr from the fixture's per-step list). */
function runSteps(opt: AnyOptimizer, ps: Tensor[], c: OptCase, from: number, to: number): void {
  for (let s = from; s < to; s++) {
    opt.lr = c.lrs[s];
    setGrads(ps, fixtureSkip(s));
    opt.step();
  }
}

// ---------------------------------------------------------------------------

describe('optimizers match PyTorch (float64)', () => {
  for (const [ci, c] of fx.optimizers.entries()) {
    // alternate between named pairs and a plain list
    const named = ci % 2 === 0;
    test(`${c.name} (${named ? 'named' : 'list'} params)`, () => {
      const ps = makeParams('float64');
      const opt = make(c.type, named ? ps.map((p, k) => [NAMES[k], p] as [string, Tensor]) : ps, c.options);
      for (let s = 0; s < fx.steps; s++) {
        runSteps(opt, ps, c, s, s + 1);
        ps.forEach((p, k) => assertClose(p.toArray(), c.trajectory[s][NAMES[k]], 1e-12, `${c.name} step ${s} ${NAMES[k]}`));
      }
      assert.equal(opt.stepCount, fx.steps);
      // final per-parameter state equals torch's (step counts and buffers)
      const sd = opt.stateDict();
      NAMES.forEach((n, k) => {
        const mine = sd.params[named ? n : String(k)];
        const theirs = c.state[n];
        assert.equal(mine.step, theirs.step, `${c.name} ${n} step`);
        assert.deepEqual(Object.keys(mine.buffers).sort(), Object.keys(theirs.buffers).sort(), `${c.name} ${n} buffer names`);
        for (const [b, v] of Object.entries(theirs.buffers)) assertClose(mine.buffers[b], v, 1e-12, `${c.name} ${n}.${b}`);
      });
    });
  }

  test('the fixture covers every optimizer and the skipped-gradient step', () => {
    assert.deepEqual([...new Set(fx.optimizers.map((c) => c.type))].sort(), ['Adagrad', 'Adam', 'AdamW', 'RMSProp', 'SGD']);
    const adam = fx.optimizers.find((c) => c.name === 'adam_default');
    assert.ok(adam);
    assert.equal(adam.state.b.step, fx.steps - 1);
  });
});

describe('optimizers in float32', () => {
  for (const c of fx.optimizers) {
    test(`${c.name} tracks the float64 trajectory`, () => {
      const ps = makeParams('float32');
      const opt = make(c.type, ps, c.options);
      runSteps(opt, ps, c, 0, fx.steps);
      for (const [k, p] of ps.entries()) {
        assert.ok(p.toArray() instanceof Float32Array);
        assertClose(p.toArray(), c.trajectory[fx.steps - 1][NAMES[k]], 1e-5, `${c.name} ${NAMES[k]}`);
      }
    });
  }
});

describe('update rules (hand-checked)', () => {
  test('SGD: first momentum buffer is the gradient itself; later ones decay', () => {
    const p = tensor([1], [1], { dtype: 'float64', requiresGrad: true });
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.5 });
    p.grad = tensor([2], [1], { dtype: 'float64' });
    opt.step(); // buf = 2 (no dampening on the first step), p = 1 − 0.2
    assert.equal(p.item(), 1 - 0.1 * 2);
    p.grad = tensor([2], [1], { dtype: 'float64' });
    opt.step(); // buf = 0.9·2 + 0.5·2 = 2.8
    assert.ok(Math.abs(p.item() - (0.8 - 0.1 * 2.8)) < 1e-15);
  });

  test('parameters whose grad is null are left alone and keep their step count', () => {
    const [w, b] = makeParams('float64');
    const before = b.toArray();
    const opt = new Adam([['w', w], ['b', b]]);
    w.grad = tensor(new Array(w.size).fill(1), w.shape, { dtype: 'float64' });
    opt.step();
    opt.step();
    assert.deepEqual(b.toArray(), before);
    const sd = opt.stateDict();
    assert.equal(sd.params.w.step, 2);
    assert.equal(sd.params.b.step, 0);
    assert.deepEqual(sd.params.b.buffers, {});
  });

  test('zeroGrad sets every gradient to null', () => {
    const ps = makeParams();
    const opt = new SGD(ps, { lr: 0.1 });
    setGrads(ps, () => false);
    opt.zeroGrad();
    for (const p of ps) assert.equal(p.grad, null);
  });

  test('lr can be changed between steps and is validated', () => {
    const ps = makeParams();
    const opt = new RMSProp(ps);
    assert.equal(opt.lr, 0.01);
    opt.lr = 0.5;
    assert.equal(opt.lr, 0.5);
    assert.equal(opt.hyper.lr, 0.5);
    assert.throws(() => { opt.lr = -1; }, /RMSProp: lr must be a finite number >= 0, got -1/);
    assert.throws(() => { opt.lr = NaN; }, /lr must be a finite number >= 0, got NaN/);
    assert.equal(opt.lr, 0.5);
  });

  test('defaults are PyTorch\'s', () => {
    const ps = makeParams();
    assert.deepEqual(new SGD(ps, { lr: 0.1 }).hyper, { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 });
    assert.deepEqual(new RMSProp(ps).hyper, { lr: 0.01, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false });
    assert.deepEqual(new Adagrad(ps).hyper, { lr: 0.01, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10 });
    assert.deepEqual(new Adam(ps).hyper, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
    assert.deepEqual(new AdamW(ps).hyper, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 });
  });
});

// ---------------------------------------------------------------------------

/** A js backend that counts allocations and reads, to see where state lives and what crosses to the host. */
class CountingBackend extends JsBackend {
  allocs = 0;
  reads = 0;
  override alloc(size: number, dtype: DType): Storage {
    this.allocs++;
    return super.alloc(size, dtype);
  }
  override read(s: Storage, offset?: number, n?: number) {
    this.reads++;
    return super.read(s, offset, n);
  }
}

describe('state lives on the parameter\'s backend', () => {
  for (const c of fx.optimizers) {
    test(`${c.name}: buffers are backend allocations, step() reads nothing back`, () => {
      const be = new CountingBackend();
      const ps = makeParams('float64', be);
      const opt = make(c.type, ps, c.options);
      runSteps(opt, ps, c, 0, 1);
      const allocsAfterFirst = be.allocs;
      // later steps reuse their buffers: the only allocations are the two new gradient tensors
      for (let s = 1; s < fx.steps; s++) {
        setGrads(ps, fixtureSkip(s));
        const reads = be.reads, allocs = be.allocs;
        opt.step();
        assert.equal(be.reads, reads, 'step() must not read values to the host');
        assert.equal(be.allocs, allocs, `step ${s} allocated`);
      }
      const reads = be.reads;
      const sd = opt.stateDict();
      const nBuffers = Object.values(sd.params).reduce((n, e) => n + Object.keys(e.buffers).length, 0);
      assert.equal(be.reads - reads, nBuffers, 'stateDict reads each buffer once');
      // the state buffers (and any scratch space) were allocated on this backend
      assert.ok(allocsAfterFirst >= nBuffers, `only ${allocsAfterFirst} allocations for ${nBuffers} buffers`);
      if (c.type !== 'SGD') assert.ok(nBuffers >= 2);
    });
  }
});

// ---------------------------------------------------------------------------

describe('stateDict / loadStateDict', () => {
  for (const c of fx.optimizers) {
    for (const dtype of ['float64', 'float32'] as const) {
      test(`${c.name} ${dtype}: save after 3 steps, JSON round trip, resume = uninterrupted run (bit-identical)`, () => {
        const ref = makeParams(dtype);
        const refOpt = make(c.type, ref.map((p, k) => [NAMES[k], p] as [string, Tensor]), c.options);
        runSteps(refOpt, ref, c, 0, fx.steps);

        const a = makeParams(dtype);
        const aOpt = make(c.type, a.map((p, k) => [NAMES[k], p] as [string, Tensor]), c.options);
        runSteps(aOpt, a, c, 0, 3);
        const json = JSON.stringify(aOpt.stateDict());

        // a fresh process: new parameters holding the saved values, new optimizer, default options
        const b = a.map((p) => {
          const t = tensor(p.toArray(), p.shape, { dtype, requiresGrad: true });
          t.name = p.name;
          return t;
        });
        const bOpt = make(c.type, b.map((p, k) => [NAMES[k], p] as [string, Tensor]), c.type === 'SGD' ? { lr: 123 } : {});
        bOpt.loadStateDict(JSON.parse(json));
        assert.deepEqual(bOpt.hyper, aOpt.hyper);
        assert.equal(bOpt.stepCount, 3);
        runSteps(bOpt, b, c, 3, fx.steps);
        b.forEach((p, k) => assert.deepEqual(p.toArray(), ref[k].toArray(), `${NAMES[k]} differs after resuming`));
        assert.deepEqual(bOpt.stateDict(), refOpt.stateDict());
      });
    }
  }

  test('a parameter saved before its first update resumes as in an uninterrupted run', () => {
    for (const type of ['SGD', 'RMSProp', 'Adagrad', 'Adam', 'AdamW']) {
      const opts = type === 'SGD' ? { lr: 0.1, momentum: 0.9 } : type === 'RMSProp' ? { momentum: 0.5, centered: true } : {};
      const onlyW = (s: number) => (name: string) => name === 'b' && s < 2; // b gets gradients from step 2 on
      const ref = makeParams();
      const refOpt = make(type, ref, opts);
      for (let s = 0; s < 4; s++) { setGrads(ref, onlyW(s)); refOpt.step(); }

      const a = makeParams();
      const aOpt = make(type, a, opts);
      setGrads(a, onlyW(0));
      aOpt.step();
      const saved = JSON.parse(JSON.stringify(aOpt.stateDict())) as OptimizerState;
      assert.equal(saved.params['1'].step, 0);
      assert.deepEqual(saved.params['1'].buffers, {});
      const b = a.map((p) => tensor(p.toArray(), p.shape, { dtype: 'float64', requiresGrad: true }));
      const bOpt = make(type, b, opts);
      bOpt.loadStateDict(saved);
      for (let s = 1; s < 4; s++) { setGrads(b, onlyW(s)); bOpt.step(); }
      b.forEach((p, k) => assert.deepEqual(p.toArray(), ref[k].toArray(), `${type} ${NAMES[k]}`));
    }
  });

  test('the state dict is plain JSON data keyed by name', () => {
    const ps = makeParams();
    const opt = new Adam(ps.map((p, k) => [NAMES[k], p] as [string, Tensor]), { lr: 0.01 });
    setGrads(ps, () => false);
    opt.step();
    const sd = opt.stateDict();
    assert.deepEqual(JSON.parse(JSON.stringify(sd)), sd);
    assert.equal(sd.type, 'Adam');
    assert.equal(sd.keyedBy, 'name');
    assert.deepEqual(Object.keys(sd.params), ['w', 'b']);
    assert.deepEqual(Object.keys(sd.params.w.buffers), ['expAvg', 'expAvgSq']);
    assert.equal(sd.params.w.buffers.expAvg.length, 6);
    assert.equal(sd.hyper.lr, 0.01);
  });

  describe('mismatched states are rejected with a message naming the problem', () => {
    const named = (): [AnyOptimizer, OptimizerState] => {
      const ps = makeParams();
      const opt = new Adam(ps.map((p, k) => [NAMES[k], p] as [string, Tensor]));
      setGrads(ps, () => false);
      opt.step();
      return [opt, JSON.parse(JSON.stringify(opt.stateDict())) as OptimizerState];
    };
    const cases: [string, (s: OptimizerState) => unknown, RegExp][] = [
      ['not an object', () => 42, /Adam\.loadStateDict: expected an object from stateDict\(\), got 42/],
      ['wrong format', (s) => ({ ...s, format: 'x' }), /not an optimizer state \(format is 'x'/],
      ['wrong version', (s) => ({ ...s, version: 2 }), /unsupported state version 2/],
      ['wrong optimizer type', (s) => ({ ...s, type: 'SGD' }), /the state is from a 'SGD' optimizer, not 'Adam'/],
      ['bad saved hyper-parameter', (s) => ({ ...s, hyper: { ...s.hyper, lr: -1 } }), /saved 'hyper': option 'lr' must be a finite number >= 0, got -1/],
      ['unknown saved hyper-parameter', (s) => ({ ...s, hyper: { ...s.hyper, amsgrad: true } }), /saved 'hyper': unknown option 'amsgrad'/],
      ['keyed by index', (s) => ({ ...s, keyedBy: 'index' }), /keyed by parameter positions but this optimizer's parameters are keyed by parameter names/],
      ['missing parameter', (s) => ({ ...s, params: { w: s.params.w } }), /the state has no entry for parameter 'b'/],
      ['extra parameter', (s) => ({ ...s, params: { ...s.params, z: s.params.b } }), /entry for 'z', which is not one of this optimizer's parameters \(w, b\)/],
      ['size mismatch', (s) => ({ ...s, params: { ...s.params, w: { ...s.params.w, size: 5 } } }), /parameter 'w' has 6 elements \(shape \[2, 3\]\) but the state holds 5/],
      ['bad step', (s) => ({ ...s, params: { ...s.params, w: { ...s.params.w, step: -1 } } }), /'step' of 'w' must be a non-negative integer, got -1/],
      ['buffer too short', (s) => ({ ...s, params: { ...s.params, w: { ...s.params.w, buffers: { ...s.params.w.buffers, expAvg: [1, 2, 3, 4, 5] } } } }), /buffer 'expAvg' of 'w' has 5 values, expected 6/],
      ['missing buffer', (s) => ({ ...s, params: { ...s.params, w: { ...s.params.w, buffers: { expAvg: s.params.w.buffers.expAvg } } } }), /buffer 'expAvgSq' of 'w' is missing/],
      ['unknown buffer', (s) => ({ ...s, params: { ...s.params, w: { ...s.params.w, buffers: { ...s.params.w.buffers, momentumBuffer: [] } } } }), /unexpected buffer 'momentumBuffer' for 'w' \(a Adam with these hyper-parameters keeps: expAvg, expAvgSq\)/],
      ['buffers on a never-updated parameter', (s) => ({ ...s, params: { ...s.params, w: { ...s.params.w, step: 0 } } }), /'w' has step 0 \(never updated\) but the state holds buffer 'expAvg'/],
      ['NaN through JSON', (s) => {
        const v = [...s.params.b.buffers.expAvgSq];
        (v as unknown[])[1] = null;
        return { ...s, params: { ...s.params, b: { ...s.params.b, buffers: { ...s.params.b.buffers, expAvgSq: v } } } };
      }, /buffer 'expAvgSq' of 'b' holds null at index 1, not a number \(NaN and Infinity do not survive JSON\)/],
    ];
    for (const [what, edit, re] of cases) {
      test(what, () => {
        const [opt, s] = named();
        const before = JSON.stringify(opt.stateDict());
        assert.throws(() => opt.loadStateDict(edit(s)), (e: unknown) => {
          assert.ok(e instanceof StateDictError, `expected a StateDictError, got ${String(e)}`);
          assert.match((e as Error).message, re);
          return true;
        });
        assert.equal(JSON.stringify(opt.stateDict()), before, 'a failed load must change nothing');
      });
    }

    test('an SGD state with momentum needs its momentum buffers', () => {
      const ps = makeParams();
      const a = new SGD(ps, { lr: 0.1 });
      setGrads(ps, () => false);
      a.step();
      const s = a.stateDict();
      s.hyper.momentum = 0.9;
      assert.throws(() => new SGD(makeParams(), { lr: 0.1 }).loadStateDict(s), /buffer 'momentumBuffer' of 'w' is missing \(it has been updated 1 times\)/);
    });
  });
});

// ---------------------------------------------------------------------------

describe('options and parameters are validated', () => {
  const ps = (): Tensor[] => makeParams();
  const bad: [string, () => unknown, RegExp][] = [
    ['SGD without lr', () => new SGD(ps(), {} as never), /SGD: option 'lr' is required \(a finite number >= 0\)/],
    ['negative lr', () => new SGD(ps(), { lr: -0.1 }), /SGD: option 'lr' must be a finite number >= 0, got -0.1/],
    ['infinite lr', () => new Adam(ps(), { lr: Infinity }), /Adam: option 'lr' must be a finite number >= 0, got Infinity/],
    ['lr of the wrong type', () => new Adam(ps(), { lr: '0.1' } as never), /Adam: option 'lr' must be a finite number >= 0, got '0.1'/],
    ['unknown key', () => new Adam(ps(), { amsgrad: true } as never), /Adam: unknown option 'amsgrad' \(expected one of: lr, betas, eps, weightDecay\)/],
    ['snake_case key', () => new AdamW(ps(), { weight_decay: 0.1 } as never), /AdamW: unknown option 'weight_decay' \(expected one of: .*weightDecay/],
    ['beta2 = 1', () => new Adam(ps(), { betas: [0.9, 1] }), /Adam: option 'betas' must be a pair \[beta1, beta2\] of numbers in \[0, 1\), got \[0.9,1\]/],
    ['negative beta1', () => new AdamW(ps(), { betas: [-0.1, 0.9] }), /AdamW: option 'betas' must be a pair/],
    ['betas not a pair', () => new Adam(ps(), { betas: [0.9] as never }), /option 'betas' must be a pair/],
    ['negative eps', () => new Adam(ps(), { eps: -1e-8 }), /Adam: option 'eps' must be a finite number >= 0, got -1e-8/],
    ['negative weight decay', () => new SGD(ps(), { lr: 0.1, weightDecay: -1 }), /SGD: option 'weightDecay' must be a finite number >= 0/],
    ['nesterov without momentum', () => new SGD(ps(), { lr: 0.1, nesterov: true }), /SGD: option 'nesterov' requires momentum > 0 and dampening = 0 \(got momentum 0, dampening 0\)/],
    ['nesterov with dampening', () => new SGD(ps(), { lr: 0.1, nesterov: true, momentum: 0.9, dampening: 0.1 }), /nesterov' requires momentum > 0 and dampening = 0 \(got momentum 0.9, dampening 0.1\)/],
    ['dampening above 1', () => new SGD(ps(), { lr: 0.1, momentum: 0.9, dampening: 2 }), /option 'dampening' must be a number in \[0, 1\], got 2/],
    ['nesterov not boolean', () => new SGD(ps(), { lr: 0.1, momentum: 0.9, nesterov: 1 as never }), /option 'nesterov' must be true or false, got 1/],
    ['RMSProp alpha above 1', () => new RMSProp(ps(), { alpha: 1.5 }), /RMSProp: option 'alpha' must be a number in \[0, 1\], got 1.5/],
    ['RMSProp centered not boolean', () => new RMSProp(ps(), { centered: 'yes' as never }), /RMSProp: option 'centered' must be true or false, got 'yes'/],
    ['Adagrad negative lrDecay', () => new Adagrad(ps(), { lrDecay: -1 }), /Adagrad: option 'lrDecay' must be a finite number >= 0, got -1/],
    ['Adagrad negative initial accumulator', () => new Adagrad(ps(), { initialAccumulatorValue: -0.1 }), /option 'initialAccumulatorValue' must be a finite number >= 0/],
    ['options not an object', () => new Adam(ps(), 0.01 as never), /Adam: options must be an object such as \{lr: 0.01\}, got 0.01/],
    ['empty parameter list', () => new Adam([]), /Adam: got an empty parameter list/],
    ['tensor given twice', () => { const p = ps(); return new Adam([['a', p[0]], ['b', p[0]]]); }, /Adam: the same tensor is given twice \('a' and 'b'\)/],
    ['duplicate names', () => { const p = ps(); return new Adam([['a', p[0]], ['a', p[1]]]); }, /Adam: parameter name 'a' appears twice/],
    ['mixed forms', () => { const p = ps(); return new Adam([p[0], ['b', p[1]]] as never); }, /Adam: parameters mix plain tensors and \[name, tensor\] pairs \(entry 1\)/],
    ['not a tensor', () => new Adam([[1, 2]] as never), /Adam: parameter entry 0 must be a Tensor or a \[name, Tensor\] pair, got \[1,2\]/],
    ['non-leaf parameter', () => {
      const p = ps();
      p[1].node = { name: 'mul', inputs: [], outputs: [p[1]], backward: null };
      return new Adam([['w', p[0]], ['h', p[1]]]);
    }, /Adam: 'h' is not a leaf tensor \(it was computed by 'mul'\)/],
  ];
  for (const [what, f, re] of bad) test(what, () => assert.throws(f, re));

  test('a gradient of the wrong size is named before anything is updated', () => {
    const p = makeParams();
    const opt = new SGD([['w', p[0]], ['b', p[1]]], { lr: 0.1 });
    const w0 = p[0].toArray();
    p[0].grad = tensor(new Array(6).fill(1), [2, 3], { dtype: 'float64' });
    p[1].grad = tensor([1, 2], [2], { dtype: 'float64' });
    assert.throws(() => opt.step(), /SGD\.step: the gradient of 'b' has shape \[2\] \(2 elements\) but the parameter has shape \[3\] \(3 elements\)/);
    assert.deepEqual(p[0].toArray(), w0);
  });

  test('a gradient of another dtype is rejected', () => {
    const p = makeParams();
    const opt = new Adam(p);
    p[0].grad = tensor(new Array(6).fill(1), [2, 3], { dtype: 'float32' });
    assert.throws(() => opt.step(), /Adam\.step: the gradient of 'w' is float32 but the parameter is float64/);
  });

  test('plain-list parameters are labelled by their tensor name or position', () => {
    const p = makeParams();
    p[1].name = undefined;
    const opt = new SGD(p, { lr: 1 });
    p[1].grad = tensor([1], [1], { dtype: 'float64' });
    assert.throws(() => opt.step(), /the gradient of 'params\[1\]' has shape \[1\]/);
  });
});

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  CosineAnnealingLR, ExponentialLR, LinearWarmup, LRScheduler, StepLR, scheduleFromSpec,
  type ScheduleSpec,
} from '../src/train/schedule.ts';
import { SGD } from '../src/train/optim.ts';
import { tensor } from '../src/tensor/tensor.ts';

interface SchedCase { name: string; baseLr: number; spec: ScheduleSpec; lrs: number[] }
const fx = JSON.parse(readFileSync(new URL('./fixtures/torch_optim.json', import.meta.url), 'utf8')) as { schedules: SchedCase[] };

function close(a: number, b: number, tol = 1e-12): boolean {
  return Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));
}

describe('schedules match torch.optim.lr_scheduler', () => {
  for (const c of fx.schedules) {
    test(`${c.name}: ${JSON.stringify(c.spec)}`, () => {
      const opt = { lr: c.baseLr };
      const sched = new LRScheduler(opt, scheduleFromSpec(c.spec));
      const got = [opt.lr];
      for (let s = 1; s < c.lrs.length; s++) got.push(sched.step());
      assert.equal(opt.lr, got[got.length - 1]);
      got.forEach((lr, s) => assert.ok(close(lr, c.lrs[s]), `step ${s}: got ${lr}, torch ${c.lrs[s]}`));
    });
  }

  test('the fixture covers every schedule type', () => {
    assert.deepEqual([...new Set(fx.schedules.map((c) => c.spec.type))].sort(), ['CosineAnnealingLR', 'ExponentialLR', 'LinearWarmup', 'StepLR']);
  });
});

describe('closed forms', () => {
  test('StepLR', () => {
    const s = new StepLR(10, 0.5);
    assert.equal(s.lrAt(0, 0.8), 0.8);
    assert.equal(s.lrAt(9, 0.8), 0.8);
    assert.equal(s.lrAt(10, 0.8), 0.4);
    assert.equal(s.lrAt(25, 0.8), 0.2);
    assert.equal(new StepLR(3).gamma, 0.1);
  });

  test('ExponentialLR', () => {
    const s = new ExponentialLR(0.5);
    assert.equal(s.lrAt(0, 2), 2);
    assert.equal(s.lrAt(3, 2), 0.25);
    assert.ok(close(new ExponentialLR(0.9).lrAt(7, 0.1), 0.1 * 0.9 ** 7));
  });

  test('CosineAnnealingLR', () => {
    const s = new CosineAnnealingLR(100, 0.01);
    assert.equal(s.lrAt(0, 1), 1);
    assert.ok(close(s.lrAt(50, 1), (1 + 0.01) / 2));
    assert.ok(close(s.lrAt(100, 1), 0.01));
    assert.ok(close(s.lrAt(25, 1), 0.01 + (0.99 * (1 + Math.SQRT1_2)) / 2));
    // like PyTorch's, it rises again after tMax
    assert.ok(close(s.lrAt(150, 1), s.lrAt(50, 1)));
    assert.ok(s.lrAt(120, 1) > s.lrAt(100, 1));
    assert.equal(new CosineAnnealingLR(10).etaMin, 0);
  });

  test('LinearWarmup alone ramps to the base rate and stays', () => {
    const s = new LinearWarmup(5);
    assert.deepEqual([0, 1, 2, 3, 4, 5, 100].map((k) => s.lrAt(k, 1)), [0.2, 0.4, 0.6, 0.8, 1, 1, 1]);
  });

  test('LinearWarmup then another schedule, which starts from its own step 0', () => {
    const s = new LinearWarmup(2, new StepLR(3, 0.1));
    const got = [0, 1, 2, 3, 4, 5, 6].map((k) => s.lrAt(k, 1));
    const want = [0.5, 1, 1, 1, 1, 0.1, 0.1];
    got.forEach((v, k) => assert.ok(close(v, want[k]), `step ${k}: ${v}`));
    const cos = new LinearWarmup(10, new CosineAnnealingLR(90));
    assert.ok(close(cos.lrAt(10 + 45, 0.3), 0.15));
  });

  test('steps must be non-negative integers', () => {
    assert.throws(() => new StepLR(2).lrAt(-1, 1), /StepLR: step must be an integer >= 0, got -1/);
    assert.throws(() => new CosineAnnealingLR(2).lrAt(1.5, 1), /CosineAnnealingLR: step must be an integer >= 0, got 1.5/);
  });
});

describe('validation', () => {
  const bad: [string, () => unknown, RegExp][] = [
    ['StepLR stepSize 0', () => new StepLR(0), /StepLR: 'stepSize' must be an integer >= 1, got 0/],
    ['StepLR fractional stepSize', () => new StepLR(2.5), /StepLR: 'stepSize' must be an integer >= 1, got 2.5/],
    ['StepLR gamma 0', () => new StepLR(2, 0), /StepLR: 'gamma' must be a finite number > 0, got 0/],
    ['ExponentialLR negative gamma', () => new ExponentialLR(-0.5), /ExponentialLR: 'gamma' must be a finite number > 0, got -0.5/],
    ['CosineAnnealingLR tMax 0', () => new CosineAnnealingLR(0), /CosineAnnealingLR: 'tMax' must be an integer >= 1, got 0/],
    ['CosineAnnealingLR negative etaMin', () => new CosineAnnealingLR(10, -1), /CosineAnnealingLR: 'etaMin' must be a finite number >= 0, got -1/],
    ['LinearWarmup 0 steps', () => new LinearWarmup(0), /LinearWarmup: 'warmupSteps' must be an integer >= 1, got 0/],
    ['LinearWarmup then not a schedule', () => new LinearWarmup(3, 5 as never), /LinearWarmup: 'then' must be a schedule/],
    ['spec of unknown type', () => scheduleFromSpec({ type: 'OneCycle' }), /scheduleFromSpec: unknown schedule type 'OneCycle' \(expected one of: StepLR, ExponentialLR, CosineAnnealingLR, LinearWarmup\)/],
    ['spec with unknown key', () => scheduleFromSpec({ type: 'StepLR', stepSize: 2, gamma: 0.5, step_size: 2 }), /unknown key 'step_size' for StepLR/],
    ['spec with bad value', () => scheduleFromSpec({ type: 'ExponentialLR', gamma: 'x' }), /ExponentialLR: 'gamma' must be a finite number > 0, got 'x'/],
    ['nested spec with bad value', () => scheduleFromSpec({ type: 'LinearWarmup', warmupSteps: 2, then: { type: 'StepLR', stepSize: -1, gamma: 0.5 } }), /StepLR: 'stepSize' must be an integer >= 1, got -1/],
    ['scheduler without optimizer', () => new LRScheduler(null as never, new StepLR(2)), /LRScheduler: expected an optimizer/],
    ['scheduler unknown option', () => new LRScheduler({ lr: 1 }, new StepLR(2), { base: 1 } as never), /LRScheduler: unknown option 'base'/],
  ];
  for (const [what, f, re] of bad) test(what, () => assert.throws(f, re));

  test('specs round-trip', () => {
    const specs: ScheduleSpec[] = [
      { type: 'StepLR', stepSize: 4, gamma: 0.3 },
      { type: 'ExponentialLR', gamma: 0.97 },
      { type: 'CosineAnnealingLR', tMax: 50, etaMin: 1e-5 },
      { type: 'LinearWarmup', warmupSteps: 7, then: null },
      { type: 'LinearWarmup', warmupSteps: 7, then: { type: 'CosineAnnealingLR', tMax: 9, etaMin: 0 } },
    ];
    for (const spec of specs) assert.deepEqual(scheduleFromSpec(JSON.parse(JSON.stringify(spec))).toSpec(), spec);
  });
});

describe('LRScheduler', () => {
  test('drives a real optimizer: construction sets lrAt(0), step() the next rate, and the optimizer uses it', () => {
    const p = tensor([0], [1], { dtype: 'float64', requiresGrad: true });
    const opt = new SGD([p], { lr: 1 });
    const sched = new LRScheduler(opt, new LinearWarmup(4));
    assert.equal(opt.lr, 0.25);
    assert.equal(sched.baseLr, 1);
    const xs: number[] = [];
    for (let k = 0; k < 5; k++) {
      p.grad = tensor([1], [1], { dtype: 'float64' });
      opt.step();
      sched.step();
      xs.push(p.item());
    }
    // updates of −lr·1 with lr = 0.25, 0.5, 0.75, 1, 1
    assert.deepEqual(xs, [-0.25, -0.75, -1.5, -2.5, -3.5]);
    assert.equal(sched.lastStep, 5);
  });

  test('an explicit baseLr overrides the optimizer\'s', () => {
    const opt = { lr: 5 };
    new LRScheduler(opt, new StepLR(1, 0.5), { baseLr: 0.1 });
    assert.equal(opt.lr, 0.1);
  });

  test('stateDict → JSON → loadStateDict resumes exactly', () => {
    const make = () => new LinearWarmup(3, new CosineAnnealingLR(20, 0.001));
    const ref = { lr: 0.1 };
    const refSched = new LRScheduler(ref, make());
    const want: number[] = [];
    for (let k = 0; k < 15; k++) want.push(refSched.step());

    const a = { lr: 0.1 };
    const aSched = new LRScheduler(a, make());
    for (let k = 0; k < 6; k++) aSched.step();
    const json = JSON.stringify(aSched.stateDict());

    const b = { lr: 42 }; // a fresh optimizer whose lr is not the base rate
    const bSched = new LRScheduler(b, make());
    bSched.loadStateDict(JSON.parse(json));
    assert.equal(b.lr, a.lr);
    assert.equal(bSched.baseLr, 0.1);
    assert.equal(bSched.lastStep, 6);
    const got = want.slice(0, 6);
    for (let k = 6; k < 15; k++) got.push(bSched.step());
    assert.deepEqual(got, want);
  });

  test('loading a state for another schedule or a malformed state fails clearly', () => {
    const sched = new LRScheduler({ lr: 1 }, new StepLR(10, 0.1));
    const other = new LRScheduler({ lr: 1 }, new StepLR(10, 0.5)).stateDict();
    assert.throws(() => sched.loadStateDict(other), /LRScheduler\.loadStateDict: the state is for StepLR\(stepSize=10, gamma=0.5\) but this scheduler runs StepLR\(stepSize=10, gamma=0.1\)/);
    const good = sched.stateDict();
    assert.throws(() => sched.loadStateDict({ ...good, step: -2 }), /'step' must be an integer >= 0, got -2/);
    assert.throws(() => sched.loadStateDict({ ...good, format: 'recur.optimizer' }), /not a scheduler state \(format is 'recur.optimizer'/);
    assert.throws(() => sched.loadStateDict({ ...good, schedule: { type: 'Nope' } }), /saved 'schedule': scheduleFromSpec: unknown schedule type 'Nope'/);
    assert.throws(() => sched.loadStateDict({ ...good, baseLr: -1 }), /'baseLr' must be a finite number >= 0, got -1/);
  });
});

/**
 * train/backend-choice.ts: the automatic choice of the backend that trains a task faster. The
 * timing is the clock's (a scripted one here: which backend is faster is not what a test can
 * measure); what is tested is what the choice does with the times, and that it leaves no trace: the
 * weights, the dropout draws and the carried state are those of a run that never made the choice.
 * The CPU backends stand for the candidates (js and wasm); test/webgpu.node.test.ts makes the choice
 * between wasm and WebGPU.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Dropout, Embedding, LSTM, Linear, Module, Rng, StateCarry, Trainer, crossEntropy, getBackend, registerBackend, reshape, setBackend,
  type Backend,
} from '../src/index.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';
import { fastestBackend } from '../src/train/backend-choice.ts';
import type { Task } from '../src/train/task.ts';

const wasm = await createWasmBackend({ threads: 1 });
registerBackend(wasm);
const js = getBackend('js');
const V = 11, T = 6, B = 3;

interface Batch { ids: number[]; targets: number[]; reset: boolean }

class Toy extends Module {
  readonly emb: Embedding;
  readonly lstm: LSTM;
  readonly drop: Dropout;
  readonly head: Linear;
  constructor(seed: number) {
    super();
    const rng = new Rng(seed);
    this.emb = this.registerModule('emb', new Embedding(V, 5, { rng }));
    // dropout between the layers and before the head, each drawing from an Rng of its own module
    this.lstm = this.registerModule('lstm', new LSTM({ inputSize: 5, hiddenSize: 8, numLayers: 2, dropout: 0.3, rng: new Rng(seed + 1) }));
    this.drop = this.registerModule('drop', new Dropout(0.2, new Rng(seed + 2)));
    this.head = this.registerModule('head', new Linear(8, V, { rng }));
  }
}

/** A char-LM-like task carrying its state from batch to batch (truncated BPTT), built on `backend`. */
function toyTask(backend: Backend): Task<Batch> & { carry: StateCarry } {
  const prev = getBackend().name;
  setBackend(backend.name);
  try {
    const model = new Toy(5);
    const carry = new StateCarry();
    return {
      name: 'toy', model, higherIsBetter: false, carry,
      step(b) {
        const r = model.lstm.forward(model.emb.forward(b.ids, [T, B]), carry.begin(b));
        carry.end({ h: r.h, c: r.c! });
        const logits = model.head.forward(reshape(model.drop.forward(r.output), [T * B, 8]));
        return { loss: crossEntropy(logits, b.targets), count: T * B };
      },
      evaluate: () => ({ loss: 0 }),
      describe: () => ({ config: {} }),
      getCarry: () => carry.toJSON(),
      setCarry: (s) => carry.fromJSON(s),
    };
  } finally {
    setBackend(prev);
  }
}

const data = {
  numBatches: 4,
  get(epoch: number, index: number): Batch {
    const rng = new Rng(100 * epoch + index);
    return { ids: Array.from({ length: T * B }, () => rng.int(V)), targets: Array.from({ length: T * B }, () => rng.int(V)), reset: index === 0 };
  },
};

/** A clock that advances by `cost[default backend]` each time it is read: each timed step then measures that cost. */
function scriptedClock(cost: Record<string, number>): () => number {
  let t = 0;
  return () => (t += cost[getBackend().name]);
}

async function weights(m: Module): Promise<number[][]> {
  return Promise.all(m.parameters().map(async (p) => Array.from(await p.data())));
}

async function losses(task: Task<Batch>, steps: number): Promise<number[]> {
  const out: number[] = [];
  await new Trainer(task, { optimizer: 'adam', lr: 0.01, maxSteps: steps, seed: 3, log: () => {}, callbacks: [{ onStepEnd: (s) => { out.push(s.loss); } }] }).fit(data);
  return out;
}

describe('fastestBackend', () => {
  for (const [fast, slow] of [['js', 'wasm'], ['wasm', 'js']]) {
    test(`keeps the model on the candidate with the shorter step (${fast} over ${slow}) and makes it the default`, async () => {
      setBackend('wasm');
      const task = toyTask(wasm);
      const { backend, trials } = await fastestBackend(task, data.get(0, 0), [wasm, js], { clock: scriptedClock({ [fast]: 0.001, [slow]: 0.05 }), minSeconds: 0.25, maxSteps: 10 });
      assert.equal(backend.name, fast);
      assert.equal(getBackend().name, fast);
      assert.ok(task.model.parameters().every((p) => p.backend.name === fast && p.grad === null));
      assert.deepEqual(trials.map((t) => t.backend), ['wasm', 'js']);
      const byName = Object.fromEntries(trials.map((t) => [t.backend, t]));
      // the fast one runs maxSteps inside minSeconds; the slow one stops once minSeconds have passed
      assert.equal(byName[fast].steps, 10);
      assert.equal(byName[slow].steps, 3);
      assert.ok(Math.abs(byName[fast].secondsPerStep! - 0.001) < 1e-9 && Math.abs(byName[slow].secondsPerStep! - 0.05) < 1e-9);
      setBackend('js');
    });
  }

  test('leaves no trace: the weights, the dropout draws and the carried state are those of a run without it', async () => {
    setBackend('wasm');
    const plain = toyTask(wasm);
    const want = await losses(plain, 4);

    const chosen = toyTask(wasm);
    const before = await weights(chosen.model);
    // js is timed last and loses: the model travels wasm → js → wasm, its dropout drawing on each
    const { backend } = await fastestBackend(chosen, data.get(0, 0), [wasm, js], { clock: scriptedClock({ wasm: 0.001, js: 0.01 }) });
    assert.equal(backend, wasm);
    assert.deepEqual(await weights(chosen.model), before, 'no weight changed');
    assert.deepEqual(await losses(chosen, 4), want, 'the run that follows is the run without the choice');
    setBackend('js');
  });

  test('puts back a carried state (a run resumed mid-epoch carries one)', async () => {
    setBackend('wasm');
    const task = toyTask(wasm);
    task.step(data.get(0, 0)); // carries the state of batch 0
    const carried = JSON.stringify(task.getCarry!());
    await fastestBackend(task, data.get(0, 1), [wasm, js], { clock: scriptedClock({ wasm: 0.001, js: 0.01 }) });
    assert.equal(JSON.stringify(task.getCarry!()), carried);
    setBackend('js');
  });

  test('a candidate that fails is left out with its reason; when all fail the model goes home and the error is thrown', async () => {
    setBackend('wasm');
    const task = toyTask(wasm);
    const broken = { ...task, step: (b: Batch) => (getBackend().name === 'js' ? (() => { throw new Error('no kernel here'); })() : task.step(b)) };
    const { backend, trials } = await fastestBackend(broken, data.get(0, 0), [js, wasm], { clock: scriptedClock({ wasm: 0.01, js: 0.001 }) });
    assert.equal(backend, wasm);
    assert.deepEqual(trials[0], { backend: 'js', secondsPerStep: null, steps: 0, error: 'no kernel here' });

    const never = { ...task, step: (): never => { throw new Error('always broken'); } };
    await assert.rejects(fastestBackend(never, data.get(0, 0), [js], {}), /always broken/);
    assert.ok(task.model.parameters().every((p) => p.backend === wasm), 'the model is back on wasm');
    assert.equal(getBackend().name, 'wasm');
    setBackend('js');
  });

  test('bad arguments are refused by name', async () => {
    const task = toyTask(js);
    const batch = data.get(0, 0);
    await assert.rejects(fastestBackend(task, batch, []), /candidates must be a non-empty array/);
    const stray = { ...wasm, name: 'stray' } as unknown as Backend;
    await assert.rejects(fastestBackend(task, batch, [stray]), /candidate 'stray' is not a registered backend/);
    await assert.rejects(fastestBackend(task, batch, [js], { maxSteps: 0 }), /option 'maxSteps' must be a positive integer, got 0/);
    await assert.rejects(fastestBackend(task, batch, [js], { minSeconds: -1 }), /option 'minSeconds' must be a finite number >= 0, got -1/);
    await assert.rejects(fastestBackend(task, batch, [js], { seconds: 1 } as never), /unknown option 'seconds' \(known: minSeconds, maxSteps, clock\)/);
    await assert.rejects(fastestBackend(task, batch, [js], 5 as never), /options must be an object/);
  });
});

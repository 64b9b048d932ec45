/**
 * train/memory.ts: one training step's memory, measured on the wasm backend. For a bare LSTM layer
 * whose loss is the sum of its outputs every buffer the forward pass keeps is known, so the measured
 * activations must be exactly their size classes; the counted parts (parameters, gradients,
 * optimizer state) follow the optimizer's state buffers; the js backend is refused by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Adam, LSTM, Rng, SGD, Tensor, registerBackend, setBackend, sum, tensor, type Module } from '../src/index.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';
import { sizeClass } from '../src/backend/wasm/memory.ts';
import { measureStepMemory } from '../src/train/memory.ts';
import type { Task } from '../src/train/task.ts';

const be = await createWasmBackend({ threads: 1 });
registerBackend(be);
setBackend(be.name);
const T = 37, B = 5, I = 7, H = 24;

function lstmTask(): { task: Task<Tensor>; x: Tensor; layer: LSTM } {
  const rng = new Rng(2);
  const layer = new LSTM({ inputSize: I, hiddenSize: H, rng });
  const x = tensor(Float32Array.from({ length: T * B * I }, () => rng.uniform(-1, 1)), [T, B, I], { backend: be });
  const task = {
    name: 'lstm-sum', model: layer as Module, higherIsBetter: false,
    step: (batch: Tensor) => ({ loss: sum(layer.forward(batch).output), count: 1 }),
    evaluate: () => ({}), describe: () => ({ config: {} }),
  } as unknown as Task<Tensor>;
  return { task, x, layer };
}

test('measureStepMemory: an LSTM layer keeps exactly its outputs, states and gates for backward', () => {
  const { task, x, layer } = lstmTask();
  const f32 = (n: number) => sizeClass(4 * n);
  const params = layer.parameters().reduce((n, p) => n + 4 * p.size, 0);
  const m = measureStepMemory(task, x, new Adam(layer.parameters()));
  // kept for backward: y [T, B, H], hN and cN [1, B, H], the states h and c of every step
  // [(T + 1), B, H] and the gate pre-activations [T, B, 4H] (b_hh folded into them); the loss
  const kept = f32(T * B * H) + 2 * f32(B * H) + 2 * f32((T + 1) * B * H) + f32(T * B * 4 * H) + f32(1);
  assert.equal(m.activations, kept);
  assert.equal(m.parameters, params);
  assert.equal(m.gradients, params);
  assert.equal(m.optimizer, 2 * params); // Adam's two moments
  // the step's peak holds at least the activations, the gradients and the gate gradients [T, B, 4H]
  assert.ok(m.stepPeak >= m.activations + m.gradients + f32(T * B * 4 * H), JSON.stringify(m));
  assert.equal(m.total, m.parameters + m.optimizer + m.stepPeak);
  assert.equal(m.workspaces, m.stepPeak - m.activations - m.gradients);
  // nothing changed: no gradient is left behind, the weights are as they were
  assert.ok(layer.parameters().every((p) => p.grad === null));
  // optimizer state per its buffers: plain SGD has none, SGD with momentum one per weight
  assert.equal(measureStepMemory(task, x, new SGD(layer.parameters(), { lr: 0.1 })).optimizer, 0);
  assert.equal(measureStepMemory(task, x, new SGD(layer.parameters(), { lr: 0.1, momentum: 0.9 })).optimizer, params);
});

test('measureStepMemory: activations grow with the sequence; a backend that cannot measure is named', () => {
  const { task, layer } = lstmTask();
  const rng = new Rng(3);
  const long = tensor(Float32Array.from({ length: 4 * T * B * I }, () => rng.uniform(-1, 1)), [4 * T, B, I], { backend: be });
  const short = measureStepMemory(task, tensor(new Float32Array(T * B * I), [T, B, I], { backend: be }), new Adam(layer.parameters()));
  const four = measureStepMemory(task, long, new Adam(layer.parameters()));
  assert.ok(four.activations > 3.5 * short.activations && four.activations < 4.5 * short.activations, `${short.activations} → ${four.activations}`);
  setBackend('js');
  const js = new LSTM({ inputSize: I, hiddenSize: H, rng: new Rng(1) });
  setBackend(be.name);
  const jsTask = { ...task, model: js, step: (b: Tensor) => ({ loss: sum(js.forward(b).output), count: 1 }) } as Task<Tensor>;
  assert.throws(() => measureStepMemory(jsTask, tensor(new Float32Array(T * B * I), [T, B, I]), new Adam(js.parameters())), /the js backend does not measure its memory/);
});

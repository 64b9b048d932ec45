/**
 * The WebGPU backend in Node, through the `webgpu` package (Dawn) on whatever Vulkan driver the
 * machine has — Mesa's lavapipe on CI (.ci/run installs it from bookworm-backports: the bookworm
 * version is too old for Dawn). On it run the shared kernel suite, the PyTorch parity suite, a
 * 50-step char-LM Trainer run against the wasm backend, moving a model back to the host, and
 * `recur train` with RECUR_BACKEND=webgpu (the CLI runs from dist/: npm test builds first).
 * Without an adapter this test fails rather than skips, naming the package to install.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create } from 'webgpu';

import { Embedding, LSTM, Linear, Rng, Tensor, Trainer, backward, getBackend, setBackend, sum, tensor } from '../src/index.ts';
import { buildLMFromText } from '../src/models/lm.ts';
import { fastestBackend } from '../src/train/backend-choice.ts';
import { keepFasterBackend } from '../src/cli/backends.ts';
import { TokenStream } from '../src/infer/token-stream.ts';

import { createWebGpuBackend, loadWebGpuBackend } from '../src/backend/webgpu/index.ts';
import { runKernelSuite } from './helpers/kernel-suite.ts';
import { runParitySuite } from './helpers/parity-suite.ts';
import { runTrainParity } from './helpers/train-parity.ts';
import { runRecurrentVsReference } from './helpers/recurrent-vs-reference.ts';
import { runFusedStepsCheck } from './helpers/fused-steps.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';
import { registerBackend } from '../src/backend/registry.ts';

const be = await loadWebGpuBackend({ gpu: create([]) }).catch((e: Error) => {
  throw new Error(`${e.message}: this test needs a Vulkan driver for Dawn — Mesa's lavapipe (mesa-vulkan-drivers from bookworm-backports; .ci/run installs it)`);
});
const label = `webgpu (${be.adapter.description || be.adapter.architecture}) float32`;
runKernelSuite(be, 'float32', { label });
runParitySuite(be, 'float32', label);
runRecurrentVsReference(be, label);
const wasm = await createWasmBackend({ threads: 1 });
registerBackend(wasm);
runTrainParity(be, wasm, label);

const CHOICE_TEXT = Array.from({ length: 40 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join('');

describe('webgpu: moving models and the command line', () => {
  test('Module.to brings a model trained on the GPU to the host: same outputs, gradients dropped', async () => {
    const js = getBackend('js');
    setBackend(be.name);
    let lstm: LSTM, x: Tensor;
    try {
      lstm = new LSTM({ inputSize: 3, hiddenSize: 5, numLayers: 2, rng: new Rng(3) });
      x = tensor(Array.from({ length: 4 * 2 * 3 }, (_, i) => Math.sin(i)), [4, 2, 3]);
      backward(sum(lstm.forward(x).output));
    } finally {
      setBackend('js');
    }
    const onGpu = await lstm.forward(x).output.data();
    assert.ok(lstm.parameters()[0].grad !== null);
    await lstm.to(js);
    assert.ok(lstm.parameters().every((p) => p.backend === js && p.grad === null));
    const onHost = lstm.forward(tensor(await x.data(), [4, 2, 3])).output.toArray();
    for (let i = 0; i < onHost.length; i++) assert.ok(Math.abs(onHost[i] - onGpu[i]) <= 1e-5, `output ${i}: ${onHost[i]} vs ${onGpu[i]}`);
  });

  test('the automatic choice: fastestBackend moves a char-LM to WebGPU untouched, and the run there matches the wasm run', async () => {
    const build = (): ReturnType<typeof buildLMFromText> => {
      const prev = getBackend().name;
      setBackend(wasm.name);
      try {
        return buildLMFromText({ embeddingDim: 16, hiddenSize: 32, numLayers: 1, seqLen: 16, batchSize: 8, stepsPerEpoch: 1000, evalBatchSize: 4, seed: 7 }, CHOICE_TEXT);
      } finally {
        setBackend(prev);
      }
    };
    const fit = async (b: ReturnType<typeof buildLMFromText>): Promise<number[]> => {
      const losses: number[] = [];
      await new Trainer(b.task, { optimizer: 'adam', lr: 0.01, clipNorm: 1, maxSteps: 8, seed: 7, log: () => {}, callbacks: [{ onStepEnd: (i) => { losses.push(i.loss); } }] }).fit(b.train);
      return losses;
    };
    const onWasm = build();
    const initial = await Promise.all(onWasm.task.model.parameters().map(async (p) => Array.from(await p.data())));
    const want = await fit(onWasm);
    // which is faster on this adapter is not a test's to measure: a scripted clock makes WebGPU win
    let t = 0;
    const clock = (): number => (t += getBackend().name === 'webgpu' ? 0.001 : 0.01);
    const chosen = build();
    const { backend, trials } = await fastestBackend(chosen.task, chosen.train.get(0, 0), [wasm, be], { clock });
    try {
      assert.equal(backend, be);
      assert.deepEqual(trials.map((x) => x.backend), ['wasm', 'webgpu']);
      assert.ok(chosen.task.model.parameters().every((p) => p.backend === be));
      const moved = await Promise.all(chosen.task.model.parameters().map(async (p) => Array.from(await p.data())));
      assert.deepEqual(moved, initial, 'the weights arrive unchanged');
      const got = await fit(chosen);
      for (let s = 0; s < want.length; s++) assert.ok(Math.abs(got[s] - want[s]) <= 2e-5 * (1 + s / 10) * want[s], `step ${s + 1}: ${got[s]} vs ${want[s]}`);
      // and timed by the real clock (minSeconds 0: one step each), both give a figure and the model is on the faster
      const timed = await fastestBackend(chosen.task, chosen.train.get(0, 0), [wasm, be], { minSeconds: 0, maxSteps: 3 });
      assert.ok(timed.trials.every((x) => x.secondsPerStep! > 0 && x.steps === 1), JSON.stringify(timed.trials));
      const faster = timed.trials.reduce((a, b) => (b.secondsPerStep! < a.secondsPerStep! ? b : a)).backend;
      assert.equal(timed.backend.name, faster);
      assert.ok(chosen.task.model.parameters().every((p) => p.backend === timed.backend));
    } finally {
      setBackend('js');
    }
  });

  test('the command line\'s timing (keepFasterBackend) prints both figures and keeps the model where it says', async () => {
    const prev = getBackend().name;
    setBackend(wasm.name);
    const { task, train } = buildLMFromText({ embeddingDim: 8, hiddenSize: 16, numLayers: 1, seqLen: 8, batchSize: 4, stepsPerEpoch: 10, evalBatchSize: 4, seed: 3 }, CHOICE_TEXT);
    const lines: string[] = [];
    const gpu = await createWebGpuBackend({ gpu: create([]) }); // its own device: it is destroyed if not kept
    try {
      const kept = await keepFasterBackend(task, train.get(0, 0), wasm, gpu, (l) => lines.push(l));
      assert.equal(lines.length, 1);
      const where = kept === gpu ? `webgpu \\(${gpu.adapter.description.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)` : 'wasm';
      assert.match(lines[0], new RegExp(`^recur: training on ${where}: a step takes wasm [\\d.]+ ms, webgpu [\\d.]+ ms \\(timed on the first batch\\)$`));
      assert.ok(task.model.parameters().every((p) => p.backend === kept));
      if (kept !== gpu) {
        // a destroyed device reports itself lost at once; the 10 s bound only turns a missing destroy() into a failure rather than a hang
        let timer: ReturnType<typeof setTimeout> | undefined;
        const lost = await Promise.race([gpu.runtime.device.lost, new Promise<{ reason: string }>((done) => (timer = setTimeout(() => done({ reason: 'still alive after 10 s' }), 10_000)))]);
        clearTimeout(timer);
        assert.equal(lost.reason, 'destroyed', 'the GPU not kept is given back');
      }
    } finally {
      setBackend(prev);
      registerBackend(be); // the suite's own WebGPU backend again under 'webgpu'
    }
  });

  test('recur train with RECUR_BACKEND unset: a software adapter is named and not timed, and the run is on wasm', () => {
    const dir = mkdtempSync(join(tmpdir(), 'recur-webgpu-auto-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const bin = fileURLToPath(new URL('../bin/recur.mjs', import.meta.url));
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.RECUR_BACKEND;
    const r = spawnSync(process.execPath, [bin, 'train', 'charlm', '--set', 'hiddenSize=32', '--set', 'seqLen=16', '--run-dir', join(dir, 'run'), '--max-steps', '2'], { encoding: 'utf8', env, timeout: 240_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.ok(r.stderr.includes(`recur: training on wasm, not WebGPU: the adapter is a CPU implementation (${be.adapter.description}`), r.stderr);
    assert.doesNotMatch(r.stderr, /a step takes/);
    assert.match(r.stdout, /step limit reached: 2 steps/);
  });

  test('RECUR_BACKEND=webgpu: every task with a neural model trains two steps (nothing is read on the host mid-step)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'recur-webgpu-tasks-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const bin = fileURLToPath(new URL('../bin/recur.mjs', import.meta.url));
    // the names classifier pools with a max over time, the forecaster holds constant tensors, the
    // captioner max-pools its image features: each once failed here
    for (const task of ['classify-spam', 'classify-names', 'feedforward', 'namegen', 'charlm', 'forecast', 'seq2seq', 'caption']) {
      const r = spawnSync(process.execPath, [bin, 'train', task, '--run-dir', join(dir, task), '--max-steps', '2', '--set', 'batchSize=4'], { encoding: 'utf8', env: { ...process.env, RECUR_BACKEND: 'webgpu' }, timeout: 240_000 });
      assert.equal(r.status, 0, `${task}: ${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /step limit reached: 2 steps/, task);
      assert.match(r.stdout, /\n {2}test: \w+ [\d.]/, task);
    }
  });

  test('RECUR_BACKEND=webgpu: recur train charlm trains, evaluates, checkpoints and resumes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'recur-webgpu-cli-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const bin = fileURLToPath(new URL('../bin/recur.mjs', import.meta.url));
    const run = (...args: string[]): string => {
      const r = spawnSync(process.execPath, [bin, 'train', 'charlm', ...args], { encoding: 'utf8', env: { ...process.env, RECUR_BACKEND: 'webgpu' }, timeout: 240_000 });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };
    const first = run('--set', 'hiddenSize=32', '--set', 'seqLen=16', '--run-dir', join(dir, 'run'), '--max-steps', '4', '--eval-every', '2');
    assert.match(first, /step limit reached: 4 steps/);
    assert.match(first, /validation: bpc \d/);
    assert.match(first, /test: bpc \d/);
    const resumed = run('--resume', join(dir, 'run'), '--max-steps', '6');
    assert.match(resumed, /step limit reached: 6 steps/);
  });
});

runFusedStepsCheck(be, label);

describe('webgpu: loading', () => {
  test('bad options and a missing WebGPU are refused with the reason', async () => {
    await assert.rejects(createWebGpuBackend({ threads: 2 } as never), /unknown option 'threads'/);
    await assert.rejects(createWebGpuBackend({ gpu: {} as never }), /requestAdapter/);
    await assert.rejects(createWebGpuBackend({ powerPreference: 'fast' as never }), /'low-power' or 'high-performance'/);
    // Node has no navigator.gpu: the reason names the way in
    await assert.rejects(createWebGpuBackend(), (e: Error) => e.name === 'BackendError' && /no WebGPU.*'webgpu' package/.test(e.message));
    await assert.rejects(createWebGpuBackend({ gpu: { requestAdapter: async () => null } }), /no WebGPU adapter/);
    await assert.rejects(createWebGpuBackend({ allowSoftware: 'no' as never }), /'allowSoftware' must be true or false, got no/);
  });

  test('allowSoftware: false refuses a CPU implementation by name (the automatic choice\'s first rule), and only that', async () => {
    const strict = createWebGpuBackend({ gpu: create([]), allowSoftware: false });
    if (be.adapter.software) await assert.rejects(strict, (e: Error) => e.name === 'BackendError' && e.message.includes(`the adapter is a CPU implementation (${be.adapter.description})`));
    else assert.equal((await strict).adapter.software, false); // a machine with a GPU driver
  });

  test('float64 is refused by name; synchronous reads say to await data()', () => {
    assert.throws(() => be.alloc(3, 'float64'), /only float32/);
    const t = be.fromArray([1, 2], 'float32');
    assert.throws(() => be.read(), /await tensor\.data\(\)/);
    assert.throws(() => new Tensor(t, [2]).toArray(), /await tensor\.data\(\)/);
    assert.throws(() => be.sumSquares(), /sumSquaresAsync/);
  });
});

describe('webgpu: streaming', () => {
  test('TokenStream.stepAsync on WebGPU gives the js backend\'s logits, token after token', async () => {
    const build = (name: string): TokenStream => {
      const prev = getBackend().name;
      setBackend(name);
      try {
        const rng = new Rng(21);
        return new TokenStream(new Embedding(11, 6, { rng }), new LSTM({ inputSize: 6, hiddenSize: 9, numLayers: 2, rng }), new Linear(9, 11, { rng }));
      } finally {
        setBackend(prev);
      }
    };
    const gpu = build(be.name), ref = build('js');
    for (const token of [3, 1, 4, 1, 5, 9, 2, 6]) {
      const got = await gpu.stepAsync(token);
      const want = await ref.stepAsync(token); // the same call on a CPU backend
      assert.deepEqual(Array.from(want), Array.from(ref.output()), 'stepAsync and output agree on js');
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `token ${token}, logit ${i}: ${got[i]} vs ${want[i]}`);
    }
    assert.throws(() => gpu.output(), /await tensor\.data\(\)/);
  });
});

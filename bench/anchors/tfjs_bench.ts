/**
 * TensorFlow.js side of the recur benchmark, run as a child process (one per TF.js backend) so that
 * TF.js and recur never share a process.
 *
 * Usage: node --import tsx bench/anchors/tfjs_bench.ts SPEC_JSON OUT_JSON
 *   SPEC_JSON: {"backend": "wasm" | "cpu", "workloads": [...], "policy": {...}}
 *
 * The model follows the anchors' TF.js script: one-hot input [B, T, V] (tfjs-backend-wasm has no
 * UnsortedSegmentSum kernel, which the gradient of an Embedding needs), `layers` recurrent layers
 * (lstm | gru | simpleRNN) with returnSequences, TimeDistributed Dense(V) with softmax, categorical
 * cross-entropy, Adam(1e-3), `trainOnBatch`. tfjs-layers optimizers have no gradient clipping, so
 * none is applied. Streaming: a stateful copy of the recurrent stack with batch input [1, 1, V],
 * `predict` + `dataSync` per token.
 */
import { writeFileAtomic } from '../../src/io/atomic.ts';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { CostModel, errorMessage, round, timeStream, timeTraining, trainResult, type Policy, type RunResult } from '../lib/measure.ts';
import type { Workload } from '../lib/workloads.ts';

interface Spec {
  backend: 'wasm' | 'cpu';
  workloads: Workload[];
  policy: Policy;
}

const spec = JSON.parse(process.argv[2]) as Spec;
const outFile = process.argv[3];
const system = `tfjs-${spec.backend}`;

function recurrentLayer(w: Workload, first: boolean, stream: boolean): tf.layers.Layer {
  const args = {
    units: w.H,
    returnSequences: true,
    kernelInitializer: 'glorotUniform' as const,
    recurrentInitializer: 'glorotUniform' as const,
    ...(stream ? { stateful: true, ...(first ? { batchInputShape: [1, 1, w.V] } : {}) } : first ? { inputShape: [w.T, w.V] } : {}),
  };
  if (w.cell === 'lstm') return tf.layers.lstm(args);
  if (w.cell === 'gru') return tf.layers.gru(args);
  return tf.layers.simpleRNN(args);
}

async function run(w: Workload, cost: CostModel): Promise<RunResult> {
  const skip = cost.skipReason(w);
  if (skip) return { workload: w.name, system, status: 'skipped', note: skip };
  const model = tf.sequential();
  for (let l = 0; l < w.layers; l++) model.add(recurrentLayer(w, l === 0, false));
  model.add(tf.layers.timeDistributed({ layer: tf.layers.dense({ units: w.V, activation: 'softmax' }) }));
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const oneHot = (shape: [number, number]): tf.Tensor => tf.tidy(() => tf.oneHot(tf.randomUniform(shape, 0, w.V, 'int32'), w.V).toFloat());
  const x = oneHot([w.B, w.T]);
  const y = oneHot([w.B, w.T]);
  let r: RunResult;
  try {
    const t = await timeTraining(async () => {
      const l = await model.trainOnBatch(x, y);
      return Array.isArray(l) ? l[0] : l;
    }, spec.policy, cost.estimateMs(w));
    cost.record(w, t.medianMs);
    r = trainResult(w, system, 1, t);
  } catch (e) {
    return { workload: w.name, system, status: 'failed', note: `failed to train: ${errorMessage(e)}` };
  } finally {
    x.dispose();
    y.dispose();
    model.dispose();
  }
  try {
    const stream = tf.sequential();
    for (let l = 0; l < w.layers; l++) stream.add(recurrentLayer(w, l === 0, true));
    const xi = tf.tidy(() => tf.oneHot(tf.tensor1d([3], 'int32'), w.V).reshape([1, 1, w.V]).toFloat());
    const s = timeStream(() => {
      const o = stream.predict(xi) as tf.Tensor;
      o.dataSync();
      o.dispose();
    }, spec.policy);
    xi.dispose();
    stream.dispose();
    r.stream_us_per_step = round(s.usPerCall, 1);
    r.stream_cpu_us_per_step = round(s.cpuUsPerCall, 1);
    r.stream_calls = s.calls;
  } catch (e) {
    r.note = `streaming failed: ${errorMessage(e)}`;
  }
  return r;
}

async function main(): Promise<void> {
  const info: Record<string, unknown> = { tfjs: tf.version.tfjs, backend: spec.backend };
  try {
    if (!(await tf.setBackend(spec.backend))) throw new Error(`tf.setBackend('${spec.backend}') returned false`);
    await tf.ready();
    if (spec.backend === 'wasm') {
      info.simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      info.threads = (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) ? 'multi' : 1;
    }
  } catch (e) {
    const note = `not available: ${errorMessage(e)}`;
    writeFileAtomic(outFile, JSON.stringify({ ...info, results: spec.workloads.map((w) => ({ workload: w.name, system, status: 'not available', note })) }));
    return;
  }
  const cost = new CostModel(spec.policy);
  const results: RunResult[] = [];
  writeFileAtomic(outFile, JSON.stringify({ ...info, results }));
  for (const w of spec.workloads) {
    const r = await run(w, cost);
    results.push(r);
    writeFileAtomic(outFile, JSON.stringify({ ...info, results })); // partial results survive a timeout
    process.stderr.write(`  ${system} ${w.name}: ${r.status === 'ok' ? `${r.train_tok_s} tok/s, ${r.stream_us_per_step ?? '–'} µs/stream step` : r.note}\n`);
  }
}

await main();

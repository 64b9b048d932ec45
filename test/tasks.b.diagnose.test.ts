/**
 * diagnose: the adding-problem data, the gradient tap, ∂L/∂h_t from the step-by-step run checked
 * against the chain rule and against the fused layer, a tiny run whose loss falls well below its
 * start, the table, the SVG and the `recur diagnose` command.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Rng } from '../src/tensor/rng.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { backward } from '../src/autograd/tape.ts';
import { mul, sum, tanh } from '../src/autograd/ops/elementwise.ts';
import { mseLoss } from '../src/autograd/ops/nn.ts';
import { reshape } from '../src/autograd/ops/shape.ts';
import { ADDING_CHANCE_MSE, AddingNet, addingBatch, formatDiagnoseTable, renderDiagnoseSvg, runDiagnose, tap } from '../src/models/diagnose.ts';
import { diagnoseCommand } from '../src/cli/diagnose.ts';
import { UsageError } from '../src/cli/args.ts';
import { assertClose, gradcheck, randomTensor } from './helpers/gradcheck.ts';
import { Adam } from '../src/train/optim.ts';
import { clipGradNorm } from '../src/train/clip.ts';

describe('adding problem data', () => {
  test('two markers, one per half; target is their sum; deterministic', () => {
    const T = 9, B = 50;
    const b = addingBatch(new Rng(1), T, B);
    for (let s = 0; s < B; s++) {
      const marks: number[] = [];
      for (let t = 0; t < T; t++) if (b.x[(t * B + s) * 2 + 1] === 1) marks.push(t);
      assert.equal(marks.length, 2);
      assert.ok(marks[0] < 4 && marks[1] >= 4);
      assert.ok(Math.abs(b.y[s] - (b.x[(marks[0] * B + s) * 2] + b.x[(marks[1] * B + s) * 2])) < 1e-6);
    }
    assert.deepEqual(addingBatch(new Rng(1), T, B), b);
    // predicting 1 scores about 1/6
    const big = addingBatch(new Rng(2), 10, 20000);
    const mse = big.y.reduce((a, y) => a + (y - 1) ** 2, 0) / big.y.length;
    assert.ok(Math.abs(mse - ADDING_CHANCE_MSE) < 0.01, `chance MSE ${mse}`);
    assert.throws(() => addingBatch(new Rng(1), 1, 2), /lag T/);
  });
});

describe('gradient flow measurement', () => {
  test('tap is the identity with an exact gradient, and reports what arrives', () => {
    const x = randomTensor([2, 3], new Rng(5), { requiresGrad: true });
    gradcheck(([a]) => tanh(tap(mul(a, a), () => {})), [x]);
    let seen: number[] = [];
    x.grad = null;
    const y = tap(x, (g) => (seen = [...g]));
    backward(sum(mul(y, 3)));
    assert.deepEqual(seen, [3, 3, 3, 3, 3, 3]);
    assert.deepEqual([...x.grad!.toArray()], [3, 3, 3, 3, 3, 3]);
  });

  test('RNN: ∂L/∂h_t obeys the chain rule g_{t−1} = (g_t ⊙ (1 − h_t²)) · W_hh', () => {
    const net = new AddingNet('rnn', 4, new Rng(3), 1, 'float64');
    const b = addingBatch(new Rng(4), 6, 3);
    const { grads } = net.hiddenGrads(b);
    // hidden states from the fused layer
    const x = new Tensor(net.head.weight.backend.fromArray(b.x, 'float64'), [6, 3, 2]);
    const hs = net.rnn.forward(x).output.toArray();
    const W = net.rnn.cells[0][0].weightHh.toArray(); // [H, H]
    const H = 4, B = 3;
    for (let t = 5; t >= 1; t--) {
      const want = new Float64Array(B * H);
      for (let s = 0; s < B; s++) for (let j = 0; j < H; j++) {
        let acc = 0;
        for (let i = 0; i < H; i++) {
          const h = hs[(t * B + s) * H + i];
          acc += grads[t][s * H + i] * (1 - h * h) * W[i * H + j];
        }
        want[s * H + j] = acc;
      }
      assertClose(grads[t - 1], want, 1e-12, `g_${t - 1}`);
    }
    assert.equal(net.parameters().filter((p) => p.grad !== null).length, 0, 'no gradients left behind');
  });

  for (const cell of ['rnn', 'lstm', 'gru'] as const) {
    test(`${cell}: the step-by-step run matches the fused layer (loss and ∂L/∂h_T)`, () => {
      const net = new AddingNet(cell, 5, new Rng(7), 1, 'float64');
      const b = addingBatch(new Rng(8), 7, 4);
      const { grads, loss } = net.hiddenGrads(b);
      // fused: tap the final hidden state
      let gT: number[] = [];
      const x = new Tensor(net.head.weight.backend.fromArray(b.x, 'float64'), [7, 4, 2]);
      const h = tap(reshape(net.rnn.forward(x).h, [4, 5]), (g) => (gT = [...g]));
      const pred = reshape(net.head.forward(h), [4]);
      const l = mseLoss(pred, new Tensor(net.head.weight.backend.fromArray(b.y, 'float64'), [4]));
      backward(l);
      net.zeroGrad();
      assert.ok(Math.abs(l.item() - loss) < 1e-12);
      assertClose(grads[6], gT, 1e-12, 'dL/dh_T');
    });
  }
});

describe('runDiagnose', () => {
  test('a tiny run learns (loss falls well below its start); table and SVG', () => {
    const r = runDiagnose({ lags: [6], cells: ['gru', 'rnn'], steps: 150, hiddenSize: 8, batchSize: 32, evalSize: 128, gradBatch: 8, curveEvery: 10 });
    const gru = r.runs.find((x) => x.cell === 'gru')!;
    assert.ok(gru.mse < 0.25 * gru.mseInit && gru.mse < 0.05, `GRU MSE ${gru.mseInit} → ${gru.mse}`);
    assert.equal(gru.gradFinal.length, 6);
    assert.ok(gru.gradFinal.every((g) => g > 0 && Number.isFinite(g)));
    const table = formatDiagnoseTable(r);
    assert.match(table, /gru\s+6\s+\d\.\d{4}/);
    assert.match(table, /rnn\s+6/);
    const svg = renderDiagnoseSvg(r);
    assert.ok(svg.startsWith('<svg') && svg.trimEnd().endsWith('</svg>'));
    assert.equal((svg.match(/<polyline/g) ?? []).length, 2 * 2 + 2); // per cell: grad init + final, and a curve
    assert.doesNotMatch(svg, /NaN|undefined/);
    // same seed, same numbers
    const again = runDiagnose({ lags: [6], cells: ['gru'], steps: 20, hiddenSize: 8, evalSize: 64, gradBatch: 8 });
    const again2 = runDiagnose({ lags: [6], cells: ['gru'], steps: 20, hiddenSize: 8, evalSize: 64, gradBatch: 8 });
    assert.equal(again.runs[0].mse, again2.runs[0].mse);
  });

  test('option errors', () => {
    assert.throws(() => runDiagnose({ lags: [1] }), /lags/);
    assert.throws(() => runDiagnose({ cells: ['tcn' as never] }), /unknown cell 'tcn'/);
    assert.throws(() => runDiagnose({ step: 3 } as never), /unknown option 'step'/);
    assert.throws(() => runDiagnose({ clip: 0 }), /'clip' must be > 0, got 0/);
  });

  test('trains through the Trainer with the losses of a plain Adam + clipping loop, bit for bit', () => {
    // The loop runDiagnose ran before it used the Trainer, kept here as the reference.
    const o = { seed: 2, lag: 7, steps: 25, batchSize: 8, hiddenSize: 6, lr: 1e-2, clip: 1, curveEvery: 5 };
    const r = runDiagnose({ lags: [o.lag], cells: ['lstm'], steps: o.steps, batchSize: o.batchSize, hiddenSize: o.hiddenSize, lr: o.lr, clip: o.clip, seed: o.seed, curveEvery: o.curveEvery, evalSize: 32, gradBatch: 4 });
    const net = new AddingNet('lstm', o.hiddenSize, new Rng(o.seed * 1000 + o.lag), 1);
    const opt = new Adam(net.namedParameters(), { lr: o.lr });
    const dataRng = new Rng(o.seed * 99991 + o.lag);
    const curve: [number, number][] = [];
    let run = 0;
    for (let step = 1; step <= o.steps; step++) {
      const loss = net.loss(addingBatch(dataRng, o.lag, o.batchSize));
      backward(loss);
      clipGradNorm(net.parameters(), o.clip);
      opt.step();
      opt.zeroGrad();
      run += loss.item();
      if (step % o.curveEvery === 0) {
        curve.push([step, run / o.curveEvery]);
        run = 0;
      }
    }
    assert.deepEqual(r.runs[0].curve, curve);
  });
});

describe('recur diagnose', () => {
  test('writes the table, the SVG and JSON; bad flags exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'recur-diag-'));
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    try {
      process.stdout.write = ((s: string) => (out.push(s), true)) as typeof process.stdout.write;
      process.stderr.write = ((s: string) => (out.push(s), true)) as typeof process.stderr.write;
      const svg = join(dir, 'd.svg'), json = join(dir, 'd.json');
      assert.equal(await diagnoseCommand(['--lags', '5', '--cells', 'gru,lstm', '--steps', '10', '--hidden', '4', '--svg', svg, '--json', json, '--quiet']), 0);
      assert.match(readFileSync(svg, 'utf8'), /^<svg/);
      assert.equal(JSON.parse(readFileSync(json, 'utf8')).runs.length, 2);
      assert.match(out.join(''), /lstm\s+5/);
      // usage errors are thrown for main to print (exit code 2)
      const usage = (re: RegExp) => (e: Error) => e instanceof UsageError && e.exitCode === 2 && re.test(e.message);
      await assert.rejects(diagnoseCommand(['--lags', 'x']), usage(/--lags must be a comma-separated list/));
      await assert.rejects(diagnoseCommand(['--cells', 'tcn']), usage(/unknown cell 'tcn'/));
      await assert.rejects(diagnoseCommand(['--bogus']), usage(/unknown option '--bogus'/));
      await assert.rejects(diagnoseCommand(['--steps', '-5']), usage(/--steps must be a positive integer, got '-5'/));
      assert.equal(await diagnoseCommand(['--help']), 0);
      assert.match(out.join(''), /Usage: recur diagnose/);
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The token-streaming fast path (precomputed embedding × W_ih table, batch 1, no per-step
 * allocation) gives the same outputs as the full-sequence layer, for every cell, stacked, with and
 * without a head, on the reference and the wasm backend.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  Embedding, GRU, LSTM, Linear, RNN, Rng, registerBackend, setBackend, noGrad, linear, type RecurrentBase,
} from '../src/index.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';
import { TokenStream } from '../src/infer/token-stream.ts';
import { assertClose } from './helpers/gradcheck.ts';

// The wasm kernel module is built by `npm install` (rebuilt here if its sources changed since);
// failing to start it fails this file rather than quietly dropping the wasm half.
execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build-wasm.mjs', import.meta.url)), '--if-stale'], { stdio: 'pipe' });
registerBackend(await createWasmBackend({ threads: 1 }));
const backends = ['js', 'wasm'];

const tokens = [3, 0, 7, 7, 2, 9, 1];
for (const backend of backends) {
  for (const mode of ['LSTM', 'GRU', 'RNN_TANH', 'RNN_RELU'] as const) {
    test(`TokenStream equals the full-sequence forward: ${mode}, 2 layers, ${backend}`, () => {
      setBackend(backend);
      try {
        const rng = new Rng(5);
        const emb = new Embedding(10, 6, { rng });
        const o = { inputSize: 6, hiddenSize: 8, numLayers: 2, rng };
        const layer: RecurrentBase = mode === 'LSTM' ? new LSTM(o) : mode === 'GRU' ? new GRU(o) : new RNN({ ...o, nonlinearity: mode === 'RNN_RELU' ? 'relu' : 'tanh' });
        const head = new Linear(8, 10, { rng });
        const full = noGrad(() => layer.forward(emb.forward(tokens, [tokens.length, 1])).output);
        const fullLogits = noGrad(() => linear(full, head.weight, head.bias)).toArray();
        const fullH = full.toArray();
        const withHead = new TokenStream(emb, layer, head);
        const noHead = new TokenStream(emb, layer);
        tokens.forEach((tok, t) => {
          assertClose(withHead.step(tok), fullLogits.subarray(t * 10, (t + 1) * 10), 1e-5, `logits at step ${t}`);
          assertClose(noHead.step(tok), fullH.subarray(t * 8, (t + 1) * 8), 1e-5, `hidden state at step ${t}`);
        });
        withHead.reset();
        assertClose(withHead.step(tokens[0]), fullLogits.subarray(0, 10), 1e-5, 'after reset');
      } finally {
        setBackend('js');
      }
    });
  }
}

test('TokenStream rejects bidirectional layers, size mismatches and unknown tokens', () => {
  const emb = new Embedding(5, 4);
  assert.throws(() => new TokenStream(emb, new LSTM({ inputSize: 4, hiddenSize: 3, bidirectional: true })), /bidirectional/);
  assert.throws(() => new TokenStream(emb, new LSTM({ inputSize: 5, hiddenSize: 3 })), /embedding size 4.*input size 5/);
  const s = new TokenStream(emb, new GRU({ inputSize: 4, hiddenSize: 3 }));
  assert.throws(() => s.step(5), /token 5 is outside the vocabulary \[0, 5\)/);
});

/**
 * The ONNX project's own node tests for RNN, GRU and LSTM (shared/conformance/onnx-node, beside
 * the repository): every case must reproduce its expected outputs, through both of recur's
 * implementations of the recurrent operators (the fused fast path where it applies, and the
 * general one), and `recur onnx test` must report them all as passing. The committed extra cases
 * in test/fixtures/onnx (same reference, scripts/make_onnx_fixtures.py) run the same way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { findTestCases, runTestCase } from '../src/onnx/testcase.ts';
import { onnxCommand } from '../src/cli/onnx.ts';
import { wasmBackendOrSkip } from './helpers/wasm.ts';


const DIR = fileURLToPath(new URL('../../shared/conformance/onnx-node', import.meta.url));
const present = existsSync(DIR);
const skip = present ? false : `ONNX conformance cases not found at ${DIR} (the shared/ folder beside the repository); skipping`;

const EXPECTED = [
  'test_gru_batchwise', 'test_gru_defaults', 'test_gru_seq_length', 'test_gru_with_initial_bias',
  'test_lstm_batchwise', 'test_lstm_defaults', 'test_lstm_with_initial_bias', 'test_lstm_with_peepholes',
  'test_rnn_seq_length', 'test_simple_rnn_batchwise', 'test_simple_rnn_defaults', 'test_simple_rnn_with_initial_bias',
];

test('the conformance folder holds the 12 recurrent-operator cases', { skip }, () => {
  const names = findTestCases(DIR).map((d) => d.split(/[\\/]/).pop());
  for (const n of EXPECTED) assert.ok(names.includes(n), `missing case ${n}`);
});

for (const path of ['auto', 'general'] as const) {
  for (const name of EXPECTED) {
    test(`ONNX node test ${name} passes (${path === 'auto' ? 'default dispatch' : 'general implementation'})`, { skip }, () => {
      const r = runTestCase(`${DIR}/${name}`, { rtol: 1e-5, atol: 1e-6 }, { recurrentPath: path });
      assert.equal(r.error, undefined, r.error);
      assert.ok(r.dataSets.length >= 1);
      for (const s of r.dataSets) {
        assert.equal(s.error, undefined, s.error);
        assert.ok(s.outputs.length >= 1);
        for (const o of s.outputs) assert.ok(o.pass, `${name}/${s.name}/${o.name}: ${o.message ?? `max abs ${o.maxAbs}, max rel ${o.maxRel}`}`);
      }
      assert.ok(r.pass);
    });
  }
}

test('recur onnx test DIR passes every case and exits 0', { skip }, async () => {
  let out = '', err = '';
  const code = await onnxCommand(['test', DIR], { out: (s) => (out += s), err: (s) => (err += s) });
  assert.equal(code, 0, out + err);
  assert.match(out, /12 passed, 0 failed/);
  for (const n of EXPECTED) assert.match(out, new RegExp(`PASS ${n}\\b`));
  assert.match(out, /max abs err .* max rel err/);
});

const FIXTURES = fileURLToPath(new URL('./fixtures/onnx', import.meta.url));

test('the committed extra cases (test/fixtures/onnx) pass through both implementations', () => {
  const cases = findTestCases(FIXTURES);
  assert.ok(cases.length >= 9, `found ${cases.length} cases`);
  for (const path of ['auto', 'general'] as const) {
    for (const c of cases) {
      const r = runTestCase(c, { rtol: 1e-5, atol: 1e-6 }, { recurrentPath: path });
      const why = r.error ?? r.dataSets.map((s) => s.error ?? s.outputs.filter((o) => !o.pass).map((o) => `${o.name}: ${o.message ?? o.maxAbs}`).join('; ')).join(' ');
      assert.ok(r.pass, `${r.name} (${path}): ${why}`);
    }
  }
});

test('the cases also pass with float math on the wasm backend', async (t) => {
  const backend = await wasmBackendOrSkip(t);
  if (!backend) return;
  const cases = [...(present ? findTestCases(DIR) : []), ...findTestCases(FIXTURES)];
  for (const c of cases) {
    const r = runTestCase(c, { rtol: 1e-5, atol: 1e-6 }, { backend });
    assert.ok(r.pass, `${r.name} on wasm: ${r.error ?? JSON.stringify(r.dataSets)}`);
  }
});

/**
 * The ONNX commands of the `recur` CLI, as functions that take argv (after the command name) and
 * return an exit code: 0 success, 1 failure (a failed test, an unreadable model), 2 usage error.
 *
 *   recur export MODEL --format onnx -o FILE [--no-state] [--softmax] [--batch-first]
 *   recur onnx run MODEL.onnx --inputs name=FILE [name=FILE ...] [--general]
 *   recur onnx test DIR [--rtol R] [--atol A] [--general]
 *   recur onnx info MODEL.onnx
 *
 * `export` rebuilds the model from a recur model file's `recur.config` (architectures it can
 * rebuild: charlm, rnn-classifier) and writes ONNX; `run` feeds inputs from JSON ({"shape": [...], "data": [...]},
 * or a nested array) or TensorProto (.pb) files and prints the outputs as JSON; `test` runs ONNX
 * test-case folders (DIR itself, or every case below it) and reports each output's worst error.
 */
import { readFileSync, existsSync } from 'node:fs';
import { extname } from 'node:path';
import { loadModelFile } from '../io/files.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { loadCharLM } from '../models/charlm.ts';
import { OnnxError, decodeTensorProto } from '../onnx/proto.ts';
import { tensorFromProto } from '../onnx/tensor.ts';
import { loadOnnx, type OnnxInput } from '../onnx/model.ts';
import { exportOnnx, charLMExportSpec, EXPORT_OPSET, type ExportSpec, type ExportStep } from '../onnx/export.ts';
import type { Module } from '../nn/module.ts';
import { loadClassifier } from '../models/classifier.ts';
import { findTestCases, runTestCase } from '../onnx/testcase.ts';
import { reportError, stdio, UsageError, type CliIO } from './args.ts';

/** The `recur.config` architectures `recur export --format onnx` can rebuild. */
export const EXPORTABLE_ARCHS = ['charlm', 'rnn-classifier'] as const;

export type { CliIO } from './args.ts';

export const EXPORT_USAGE = `usage: recur export MODEL --format onnx -o FILE [--no-state] [--softmax] [--batch-first]
  MODEL          a recur model file (.safetensors) with recur.config metadata
  --format onnx  the output format (ONNX is the only one)
  -o FILE        where to write the .onnx file
  --no-state     charlm: leave out the state inputs and outputs (h0, c0, hn, cn)
  --softmax      end the graph with a softmax (probabilities instead of logits)
  --batch-first  token input [B, T] (and charlm output [B, T, V]) instead of time-major
architectures: charlm (ids [T, B] → logits [T, B, V], with state), rnn-classifier (ids [T, B]
and lengths [B] → class logits [B, C])
`;

export const ONNX_USAGE = `usage: recur onnx <command> ...
  recur onnx run MODEL.onnx --inputs name=FILE [name=FILE ...] [--general]
      run a model; FILE is JSON ({"shape": [...], "data": [...]} or a nested array) or a
      serialized TensorProto (.pb); prints the outputs as JSON
  recur onnx test DIR [--rtol R] [--atol A] [--general]
      run ONNX test cases (DIR with model.onnx and test_data_set_*/, or a folder of such
      folders) and report pass/fail per output with the worst absolute and relative error
  recur onnx info MODEL.onnx
      print the model's opset, inputs, outputs and operators
  --general   run RNN/GRU/LSTM nodes with the general implementation only (for cross-checks)
`;


function readBytes(path: string, what: string): Uint8Array {
  if (!existsSync(path)) throw new OnnxError(`${what} '${path}' does not exist`);
  return readFileSync(path);
}

/** `recur export MODEL --format onnx -o FILE`. */
export async function exportCommand(argv: string[], io: CliIO = stdio): Promise<number> {
  try {
    let model: string | undefined, out: string | undefined, format: string | undefined;
    let state = true, softmax = false, batchFirst = false;
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (a === '--help' || a === '-h') {
        io.out(EXPORT_USAGE);
        return 0;
      } else if (a === '--format') format = argv[++i];
      else if (a.startsWith('--format=')) format = a.slice(9);
      else if (a === '-o' || a === '--output') out = argv[++i];
      else if (a === '--no-state') state = false;
      else if (a === '--softmax') softmax = true;
      else if (a === '--batch-first') batchFirst = true;
      else if (a.startsWith('-')) throw new UsageError(`unknown option '${a}'\n${EXPORT_USAGE}`);
      else if (model === undefined) model = a;
      else throw new UsageError(`unexpected argument '${a}'\n${EXPORT_USAGE}`);
    }
    if (!model) throw new UsageError(`missing MODEL\n${EXPORT_USAGE}`);
    if (format === undefined) throw new UsageError(`missing --format onnx\n${EXPORT_USAGE}`);
    if (format !== 'onnx') throw new UsageError(`unsupported format '${format}' (supported: onnx)`);
    if (!out) throw new UsageError(`missing -o FILE\n${EXPORT_USAGE}`);
    if (!existsSync(model)) throw new OnnxError(`model file '${model}' does not exist`);
    const file = loadModelFile(model);
    const config = file.config as { arch?: unknown } | null;
    if (config === null || typeof config !== 'object') {
      throw new OnnxError(`${model}: the file has no recur.config metadata, so the architecture cannot be rebuilt for export`);
    }
    const metadata: Record<string, string> = {};
    for (const k of ['recur.config', 'recur.vocab', 'recur.version']) if (file.metadata[k] !== undefined) metadata[k] = file.metadata[k];
    let module: Module;
    let spec: ExportSpec;
    if (config.arch === 'charlm') {
      module = loadCharLM(loadModelFile(model), model).model;
      spec = { ...charLMExportSpec({ state, softmax }), batchFirst, metadata };
    } else if (config.arch === 'rnn-classifier') {
      const m = loadClassifier(loadModelFile(model), model).model;
      module = m;
      const pool: ExportStep = m.opts.pooling === 'last' ? { op: 'finalState' } : { op: 'meanOverTime' };
      spec = { steps: ['embedding', 'rnn', pool, 'head', ...(softmax ? [{ op: 'softmax' } as const] : [])], lengths: true, batchFirst, metadata };
    } else {
      throw new OnnxError(`${model}: cannot export architecture ${JSON.stringify(config.arch)} to ONNX (architectures the exporter can rebuild from recur.config: ${EXPORTABLE_ARCHS.join(', ')})`);
    }
    const bytes = exportOnnx(module, spec);
    writeFileAtomic(out, bytes);
    const info = loadOnnx(bytes);
    io.out(`wrote ${out} (${bytes.length} bytes, ONNX opset ${EXPORT_OPSET}): inputs ${info.inputs.map((i) => i.name).join(', ')}; outputs ${info.outputs.map((o) => o.name).join(', ')}\n`);
    return 0;
  } catch (e) {
    return reportError(io, e);
  }
}

/** Parse a nested JSON array into shape + flat data (rectangular only). */
function fromNested(v: unknown, what: string): OnnxInput {
  const shape: number[] = [];
  let cur: unknown = v;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  const data: number[] = [];
  const walk = (x: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (typeof x !== 'number' && typeof x !== 'boolean') throw new OnnxError(`${what}: expected a number, got ${JSON.stringify(x)}`);
      data.push(Number(x));
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[depth]) throw new OnnxError(`${what}: the nested array is not rectangular`);
    for (const y of x) walk(y, depth + 1);
  };
  walk(v, 0);
  return { shape, data };
}

function readInputFile(path: string, what: string): OnnxInput {
  const bytes = readBytes(path, what);
  if (extname(path).toLowerCase() === '.pb') {
    const t = tensorFromProto(decodeTensorProto(bytes, path), path);
    return { shape: t.shape, data: t.data };
  }
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new OnnxError(`${what} '${path}' is not valid JSON (${(e as Error).message})`);
  }
  if (Array.isArray(v) || typeof v === 'number') return fromNested(v, `${what} '${path}'`);
  if (v !== null && typeof v === 'object' && 'data' in v) {
    const o = v as { shape?: unknown; dims?: unknown; data: unknown };
    const flat = fromNested(o.data, `${what} '${path}'`);
    const shape = o.shape ?? o.dims ?? flat.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new OnnxError(`${what} '${path}': shape must be an array of non-negative integers`);
    return { shape: shape as number[], data: flat.data };
  }
  throw new OnnxError(`${what} '${path}': expected {"shape": [...], "data": [...]} or a nested array`);
}

function jsonNumber(x: number): number | string | null {
  return Number.isFinite(x) ? x : Number.isNaN(x) ? null : x > 0 ? 'Infinity' : '-Infinity';
}

async function runCmd(argv: string[], io: CliIO): Promise<number> {
  let modelPath: string | undefined;
  const pairs: string[] = [];
  let general = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--inputs' || a === '--input' || a === '-i') {
      while (i + 1 < argv.length && !argv[i + 1].startsWith('-')) pairs.push(argv[++i]);
    } else if (a === '--general') general = true;
    else if (a.startsWith('-')) throw new UsageError(`unknown option '${a}'\n${ONNX_USAGE}`);
    else if (modelPath === undefined) modelPath = a;
    else pairs.push(a);
  }
  if (!modelPath) throw new UsageError(`missing MODEL.onnx\n${ONNX_USAGE}`);
  const model = loadOnnx(readBytes(modelPath, 'model'), { recurrentPath: general ? 'general' : 'auto' });
  const inputs: Record<string, OnnxInput> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`--inputs expects name=FILE, got '${p}'`);
    const name = p.slice(0, eq);
    inputs[name] = readInputFile(p.slice(eq + 1), `input '${name}'`);
  }
  const outputs = model.run(inputs);
  const json: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(outputs)) json[k] = { dtype: v.dtype, shape: v.shape, data: Array.from(v.data, jsonNumber) };
  io.out(`${JSON.stringify(json)}\n`);
  return 0;
}

function fmt(x: number): string {
  return Number.isNaN(x) ? 'n/a' : x.toExponential(2);
}

async function testCmd(argv: string[], io: CliIO): Promise<number> {
  let dir: string | undefined;
  let rtol: number | undefined, atol: number | undefined;
  let general = false;
  const num = (s: string | undefined, name: string): number => {
    const v = Number(s);
    if (s === undefined || !Number.isFinite(v) || v < 0) throw new UsageError(`${name} expects a non-negative number`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rtol') rtol = num(argv[++i], '--rtol');
    else if (a === '--atol') atol = num(argv[++i], '--atol');
    else if (a === '--general') general = true;
    else if (a.startsWith('-')) throw new UsageError(`unknown option '${a}'\n${ONNX_USAGE}`);
    else if (dir === undefined) dir = a;
    else throw new UsageError(`unexpected argument '${a}'`);
  }
  if (!dir) throw new UsageError(`missing DIR\n${ONNX_USAGE}`);
  const cases = findTestCases(dir);
  if (cases.length === 0) throw new OnnxError(`no ONNX test cases (folders with model.onnx) under '${dir}'`);
  let passed = 0;
  for (const c of cases) {
    const r = runTestCase(c, { rtol, atol }, { recurrentPath: general ? 'general' : 'auto' });
    if (r.pass) passed++;
    io.out(`${r.pass ? 'PASS' : 'FAIL'} ${r.name}${r.error ? `: ${r.error}` : ''}\n`);
    for (const s of r.dataSets) {
      if (s.error) io.out(`  ${s.name}: ${s.error}\n`);
      for (const o of s.outputs) {
        io.out(`  ${s.name} ${o.name}: ${o.pass ? 'ok' : 'FAIL'}${o.message ? ` (${o.message})` : ''}  max abs err ${fmt(o.maxAbs)}, max rel err ${fmt(o.maxRel)}\n`);
      }
    }
  }
  const failed = cases.length - passed;
  io.out(`${passed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

async function infoCmd(argv: string[], io: CliIO): Promise<number> {
  if (argv.length !== 1 || argv[0].startsWith('-')) throw new UsageError(`expected one MODEL.onnx\n${ONNX_USAGE}`);
  const bytes = readBytes(argv[0], 'model');
  const model = loadOnnx(bytes);
  const dims = (s: (number | string | null)[] | null): string => (s ? `[${s.map((d) => d ?? '?').join(', ')}]` : '(any)');
  io.out(`${argv[0]}: ONNX IR ${model.irVersion}, opset ${model.opset}${model.producer ? `, produced by ${model.producer}` : ''}\n`);
  for (const i of model.inputs) io.out(`  input  ${i.name}: ${i.dtype} ${dims(i.shape)}\n`);
  for (const o of model.outputs) io.out(`  output ${o.name}: ${o.dtype} ${dims(o.shape)}\n`);
  io.out(`  operators: ${[...model.operators].map(([op, n]) => (n > 1 ? `${op} ×${n}` : op)).join(', ') || '(none)'}\n`);
  return 0;
}

/** `recur onnx run|test|info ...`. */
export async function onnxCommand(argv: string[], io: CliIO = stdio): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case 'run': return await runCmd(rest, io);
      case 'test': return await testCmd(rest, io);
      case 'info': return await infoCmd(rest, io);
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        (sub === undefined ? io.err : io.out)(ONNX_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown onnx command '${sub}'\n${ONNX_USAGE}`);
    }
  } catch (e) {
    return reportError(io, e);
  }
}

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
import { readFileSync, existsSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { loadModelFile } from '../io/files.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { loadCharLM } from '../models/charlm.ts';
import { OnnxError, decodeTensorProto } from '../onnx/proto.ts';
import { tensorFromProto } from '../onnx/tensor.ts';
import { loadOnnx, type OnnxInput } from '../onnx/model.ts';
import { exportOnnx, charLMExportSpec, classifierExportSpec, EXPORT_OPSET, type ExportSpec } from '../onnx/export.ts';
import type { Module } from '../nn/module.ts';
import { loadClassifier } from '../models/classifier.ts';
import { findTestCases, runTestCase } from '../onnx/testcase.ts';
import { CliError, flagLines, flagSpec, flagSynopsis, HELP_FLAG, OptionReader, parseOrHelp, stdio, UsageError, type CliIO, type Flag } from './args.ts';
import { fileError, userError } from './format.ts';
import { isRecord } from '../util/options.ts';
import { isShape } from '../util/shape.ts';

/** The `recur.config` architectures `recur export --format onnx` can rebuild. */
export const EXPORTABLE_ARCHS = ['charlm', 'rnn-classifier'] as const;

export type { CliIO } from './args.ts';

const EXPORT_FLAGS: Record<string, Flag> = {
  format: { type: 'string', value: 'onnx', required: true, help: 'the output format (ONNX is the only one)' },
  output: { type: 'string', short: 'o', shortForm: true, value: 'FILE', required: true, help: 'where to write the .onnx file (an existing file is refused without --force)' },
  force: { type: 'boolean', help: 'replace FILE if it exists' },
  'no-state': { type: 'boolean', help: 'charlm: leave out the state inputs and outputs (h0, c0, hn, cn)' },
  softmax: { type: 'boolean', help: 'end the graph with a softmax (probabilities instead of logits)' },
  'batch-first': { type: 'boolean', help: 'token input [B, T] (and charlm output [B, T, V]) instead of time-major' },
};

const HELP: Record<string, Flag> = { help: { ...HELP_FLAG, help: 'show this help' } };

export const EXPORT_USAGE = `usage: recur export MODEL ${flagSynopsis(EXPORT_FLAGS)}
  MODEL          a recur model file (.safetensors) with recur.config metadata
${flagLines(EXPORT_FLAGS, 17)}architectures: charlm (ids [T, B] → logits [T, B, V], with state), rnn-classifier (ids [T, B]
and lengths [B] → class logits [B, C])
`;

/** The flag `onnx run` and `onnx test` share. */
const GENERAL_FLAG: Record<string, Flag> = {
  general: { type: 'boolean', help: 'run RNN/GRU/LSTM nodes with the general implementation only (for cross-checks)' },
};

const RUN_FLAGS: Record<string, Flag> = {
  inputs: { type: 'string', multiple: true, value: 'name=FILE [name=FILE ...]', required: true, help: 'the inputs by name (the first pair is the value, the others follow it)' },
  ...GENERAL_FLAG,
};
/** Other spellings of --inputs, left out of the usage. */
const RUN_ALIASES: Record<string, Flag> = {
  input: { type: 'string', multiple: true, help: 'the same as --inputs' },
  i: { type: 'string', short: 'i', multiple: true, help: 'the same as --inputs' },
};

const TEST_FLAGS: Record<string, Flag> = {
  rtol: { type: 'string', value: 'R', help: 'relative tolerance: |actual − expected| ≤ A + R·|expected| (default 1e-5)' },
  atol: { type: 'string', value: 'A', help: 'absolute tolerance (default 1e-6)' },
  ...GENERAL_FLAG,
};

export const ONNX_USAGE = `usage: recur onnx <command> ...
  recur onnx run MODEL.onnx ${flagSynopsis(RUN_FLAGS)}
      run a model; FILE is JSON ({"shape": [...], "data": [...]} or a nested array) or a
      serialized TensorProto (.pb); prints the outputs as JSON
  recur onnx test DIR ${flagSynopsis(TEST_FLAGS)}
      run ONNX test cases (DIR with model.onnx and test_data_set_*/, or a folder of such
      folders) and report pass/fail per output with the worst absolute and relative error
  recur onnx info MODEL.onnx
      print the model's opset, inputs, outputs and operators
${flagLines({ ...GENERAL_FLAG, ...HELP }, 14)}`;

function readBytes(path: string, what: string): Uint8Array {
  if (!existsSync(path)) throw new CliError(`${what} '${path}' does not exist`);
  return readFileSync(path);
}

/**
 * Refuse to replace an existing file unless --force: a model or graph written over by mistake
 * is lost (the write is atomic, so there is no partial file either way).
 */
export function checkOutput(path: string, force: boolean, flag = '-o'): void {
  if (path === '') throw new UsageError(`${flag} needs a file name`);
  if (!existsSync(path)) return;
  if (statSync(path).isDirectory()) throw new CliError(`cannot write '${path}': it is a directory`);
  if (!force) throw new CliError(`'${path}' already exists; pass --force to replace it, or choose another ${flag}`);
}

/** `recur export MODEL --format onnx -o FILE`. Errors are thrown (UsageError, CliError); main prints them. */
export async function exportCommand(argv: string[], io: CliIO = stdio): Promise<number> {
  const parsed = parseOrHelp('recur export', argv, flagSpec({ ...EXPORT_FLAGS, ...HELP }), 1, EXPORT_USAGE, io.out);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const r = new OptionReader('recur export', values);
  const model = positionals[0];
  const format = r.string('format');
  const out = r.string('output');
  if (!model) throw new UsageError('missing the MODEL file argument');
  if (format === undefined) throw new UsageError('missing --format onnx');
  if (format !== 'onnx') throw new UsageError(`unsupported format '${format}' (supported: onnx)`);
  if (out === undefined) throw new UsageError('missing -o FILE');
  checkOutput(out, r.flag('force'));
  const state = !r.flag('no-state'), softmax = r.flag('softmax'), batchFirst = r.flag('batch-first');
  if (!existsSync(model)) throw new CliError(`model file '${model}' does not exist`);
  let file;
  try {
    file = loadModelFile(model);
  } catch (e) {
    throw fileError(model, e);
  }
  const config = file.config as { arch?: unknown } | null;
  if (config === null || typeof config !== 'object') {
    throw new CliError(`${model}: the file has no recur.config metadata, so the architecture cannot be rebuilt for export`);
  }
  const metadata: Record<string, string> = {};
  for (const k of ['recur.config', 'recur.vocab', 'recur.version']) if (file.metadata[k] !== undefined) metadata[k] = file.metadata[k];
  let module: Module;
  let spec: ExportSpec;
  try {
    if (config.arch === 'charlm') {
      const lm = loadCharLM(file, model).model;
      module = lm;
      spec = { ...charLMExportSpec({ state, softmax, cell: lm.cell }), batchFirst, metadata };
    } else if (config.arch === 'rnn-classifier') {
      const m = loadClassifier(file, model).model;
      module = m;
      // the library's spec, the one mapping of a pooling to its export step (a copy here once exported 'max' as a mean)
      spec = { ...classifierExportSpec(m, { softmax }), batchFirst, metadata };
    } else {
      throw new CliError(`${model}: cannot export architecture ${JSON.stringify(config.arch)} to ONNX (architectures the exporter can rebuild from recur.config: ${EXPORTABLE_ARCHS.join(', ')})`);
    }
  } catch (e) {
    throw e instanceof CliError ? e : fileError(model, e);
  }
  let bytes: Uint8Array;
  try {
    bytes = exportOnnx(module, spec);
  } catch (e) {
    throw userError(e);
  }
  try {
    writeFileAtomic(out, bytes);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const info = loadOnnx(bytes);
  io.out(`wrote ${out} (${bytes.length} bytes, ONNX opset ${EXPORT_OPSET}): inputs ${info.inputs.map((i) => i.name).join(', ')}; outputs ${info.outputs.map((o) => o.name).join(', ')}\n`);
  return 0;
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
  if (isRecord(v) && 'data' in v) {
    const flat = fromNested(v.data, `${what} '${path}'`);
    const shape = v.shape ?? v.dims ?? flat.shape;
    if (!isShape(shape)) throw new OnnxError(`${what} '${path}': shape must be an array of non-negative integers`);
    return { shape, data: flat.data };
  }
  throw new OnnxError(`${what} '${path}': expected {"shape": [...], "data": [...]} or a nested array`);
}

function jsonNumber(x: number): number | string | null {
  return Number.isFinite(x) ? x : Number.isNaN(x) ? null : x > 0 ? 'Infinity' : '-Infinity';
}

async function runCmd(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseOrHelp('recur onnx', argv, flagSpec({ ...RUN_FLAGS, ...RUN_ALIASES, ...HELP }), Infinity, ONNX_USAGE, io.out);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const r = new OptionReader('recur onnx', values);
  // `--inputs a=F b=F`: the first pair is the option's value, the others arrive as positionals.
  const [modelPath, ...more] = positionals;
  const pairs = [...r.strings('inputs'), ...r.strings('input'), ...r.strings('i'), ...more];
  if (!modelPath) throw new UsageError('onnx run: missing MODEL.onnx');
  const model = loadOnnx(readBytes(modelPath, 'model'), { recurrentPath: r.flag('general') ? 'general' : 'auto' });
  const inputs: Record<string, OnnxInput> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`onnx run: --inputs expects name=FILE, got '${p}'`);
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
  const parsed = parseOrHelp('recur onnx', argv, flagSpec({ ...TEST_FLAGS, ...HELP }), 1, ONNX_USAGE, io.out);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const r = new OptionReader('recur onnx', values);
  const rtol = r.number('rtol', 'nonnegative');
  const atol = r.number('atol', 'nonnegative');
  const dir = positionals[0];
  if (!dir) throw new UsageError('onnx test: missing DIR');
  const cases = findTestCases(dir);
  if (cases.length === 0) throw new CliError(`no ONNX test cases (folders with model.onnx) under '${dir}'`);
  let passed = 0;
  for (const c of cases) {
    const res = runTestCase(c, { rtol, atol }, { recurrentPath: r.flag('general') ? 'general' : 'auto' });
    if (res.pass) passed++;
    io.out(`${res.pass ? 'PASS' : 'FAIL'} ${res.name}${res.error ? `: ${res.error}` : ''}\n`);
    for (const s of res.dataSets) {
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

/**
 * The summary of an ONNX file that `recur onnx info` and `recur import FILE.onnx` print: IR and
 * opset, producer, inputs and outputs with their shapes, and the operators with their counts.
 */
export function describeOnnx(path: string, bytes: Uint8Array): string {
  // one decode, through the loader's limits; the operator counts come from the loaded model
  const model = loadOnnx(bytes);
  const dims = (s: (number | string | null)[] | null): string => (s ? `[${s.map((d) => d ?? '?').join(', ')}]` : '(any)');
  const lines = [`${path}: ONNX IR ${model.irVersion}, opset ${model.opset}${model.producer ? `, produced by ${model.producer}` : ''}`];
  for (const i of model.inputs) lines.push(`  input  ${i.name}: ${i.dtype} ${dims(i.shape)}`);
  for (const o of model.outputs) lines.push(`  output ${o.name}: ${o.dtype} ${dims(o.shape)}`);
  lines.push(`  operators: ${[...model.operators].map(([op, n]) => (n > 1 ? `${op} ×${n}` : op)).join(', ') || '(none)'}`);
  return `${lines.join('\n')}\n`;
}

async function infoCmd(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseOrHelp('recur onnx', argv, flagSpec(HELP), 1, ONNX_USAGE, io.out);
  if (!parsed) return 0;
  const { positionals } = parsed;
  if (positionals.length === 0) throw new UsageError('onnx info: missing MODEL.onnx');
  io.out(describeOnnx(positionals[0], readBytes(positionals[0], 'model')));
  return 0;
}

/** `recur onnx run|test|info ...`. Errors are thrown (UsageError, CliError); main prints them. */
export async function onnxCommand(argv: string[], io: CliIO = stdio): Promise<number> {
  const [sub, ...rest] = argv;
  const guarded = async (f: (a: string[], io: CliIO) => Promise<number>): Promise<number> => {
    try {
      return await f(rest, io);
    } catch (e) {
      throw userError(e);
    }
  };
  switch (sub) {
    case 'run': return guarded(runCmd);
    case 'test': return guarded(testCmd);
    case 'info': return guarded(infoCmd);
    case '--help':
    case '-h':
    case 'help':
      io.out(ONNX_USAGE);
      return 0;
    case undefined:
      throw new UsageError('missing the command (run, test or info)');
    default:
      throw new UsageError(`unknown onnx command '${sub}' (commands: run, test, info)`);
  }
}

/**
 * `recur import`: look at, check and convert models made elsewhere. A function that takes argv
 * (after the command name) and returns an exit code: 0 success, 1 failure, 2 usage error.
 *
 *   recur import MODEL.onnx
 *       print the model's opset, inputs, outputs and the operators it uses
 *   recur import model.json [--check INPUT.json] [--hard-sigmoid keras2|keras3] [--reference]
 *       a Keras / TF.js layers model: print its summary; --check runs it on INPUT.json
 *       ({"shape", "data"}, a nested array, or {"input": ..., "output": ...} — with an expected
 *       output, the worst absolute error is reported and more than --atol (1e-5) fails)
 *   recur import WEIGHTS.safetensors --arch rnn|rnn-relu|lstm|gru --input-size N --hidden-size H
 *                [--num-layers L] [--bidirectional] [--batch-first] [-o OUT.safetensors]
 *       a PyTorch state_dict of nn.RNN / nn.LSTM / nn.GRU: load it into the matching recur layer
 *       (every name and shape must match) and, with -o, write a recur model file whose
 *       recur.config records the architecture
 */
import { readFileSync, existsSync } from 'node:fs';
import { extname, basename } from 'node:path';
import { loadOnnx } from '../onnx/model.ts';
import { loadModelInto, saveModel } from '../io/files.ts';
import { RNN, LSTM, GRU, type RecurrentBase } from '../nn/recurrent.ts';
import { loadKerasModel, type HardSigmoidConvention, type KerasInput } from '../interop/keras-file.ts';
import { reportError, stdio, UsageError, type CliIO } from './args.ts';


export const IMPORT_USAGE = `usage: recur import FILE [options]
  FILE.onnx                 print the model's opset, inputs, outputs and operators
  model.json                a Keras / TF.js layers model: print its summary
    --check INPUT.json      run it on INPUT.json ({"shape": [...], "data": [...]}, a nested
                            array, or {"input": ..., "output": ...} to compare with an expected
                            output) and print the output as JSON
    --atol A                tolerance for the comparison (default 1e-5)
    --hard-sigmoid keras2|keras3   which hard_sigmoid (default: from keras_version)
    --reference             run every recurrent layer on the host reference implementation
  FILE.safetensors          a PyTorch nn.RNN / nn.LSTM / nn.GRU state_dict
    --arch rnn|rnn-relu|lstm|gru --input-size N --hidden-size H [--num-layers L]
    [--bidirectional] [--batch-first]
    -o OUT                  write a recur model file with the architecture in recur.config
`;

export const IMPORT_ARCHS = ['rnn', 'rnn-relu', 'lstm', 'gru'] as const;
export type ImportArch = (typeof IMPORT_ARCHS)[number];

/** The recur.config written for an imported recurrent layer. */
export interface RecurrentImportConfig {
  arch: ImportArch;
  inputSize: number;
  hiddenSize: number;
  numLayers: number;
  bidirectional: boolean;
  batchFirst: boolean;
}

/** Build the recur layer a RecurrentImportConfig describes. */
export function buildRecurrentLayer(c: RecurrentImportConfig): RecurrentBase {
  const o = { inputSize: c.inputSize, hiddenSize: c.hiddenSize, numLayers: c.numLayers, bidirectional: c.bidirectional, batchFirst: c.batchFirst };
  switch (c.arch) {
    case 'rnn': return new RNN(o);
    case 'rnn-relu': return new RNN({ ...o, nonlinearity: 'relu' });
    case 'lstm': return new LSTM(o);
    case 'gru': return new GRU(o);
  }
}

function parseInputJson(path: string): { input: KerasInput; expected: KerasInput | null } {
  if (!existsSync(path)) throw new Error(`input file '${path}' does not exist`);
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`input file '${path}' is not valid JSON (${(e as Error).message})`);
  }
  const asTensor = (x: unknown, what: string): KerasInput => {
    if (Array.isArray(x)) {
      const shape: number[] = [];
      for (let c: unknown = x; Array.isArray(c); c = c[0]) shape.push(c.length);
      const data = (x as unknown[]).flat(Infinity);
      if (!data.every((d) => typeof d === 'number')) throw new Error(`${what}: expected numbers`);
      if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`${what}: the nested array is not rectangular`);
      return { shape, data: data as number[] };
    }
    if (x !== null && typeof x === 'object' && 'shape' in x && 'data' in x) {
      const o = x as { shape: unknown; data: unknown };
      if (!Array.isArray(o.shape) || !Array.isArray(o.data)) throw new Error(`${what}: shape and data must be arrays`);
      const data = (o.data as unknown[]).flat(Infinity);
      if (!data.every((d) => typeof d === 'number')) throw new Error(`${what}: expected numbers in data`);
      return { shape: o.shape as number[], data: data as number[] };
    }
    throw new Error(`${what}: expected {"shape": [...], "data": [...]} or a nested array`);
  };
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && 'input' in v) {
    const o = v as { input: unknown; output?: unknown };
    return { input: asTensor(o.input, `${path} input`), expected: o.output === undefined ? null : asTensor(o.output, `${path} output`) };
  }
  return { input: asTensor(v, path), expected: null };
}

function onnxInfo(file: string, argv: string[], io: CliIO): number {
  if (argv.length) throw new UsageError(`unexpected argument(s) for an ONNX file: ${argv.join(' ')} (converting ONNX graphs to recur model files is not supported)`);
  const bytes = readFileSync(file);
  // One decode, through the loader's limits; the operator counts come from the loaded model.
  const model = loadOnnx(bytes);
  const dims = (s: (number | string | null)[] | null): string => (s ? `[${s.map((d) => d ?? '?').join(', ')}]` : '(any)');
  io.out(`${file}: ONNX IR ${model.irVersion}, opset ${model.opset}${model.producer ? `, produced by ${model.producer}` : ''}\n`);
  for (const i of model.inputs) io.out(`  input  ${i.name}: ${i.dtype} ${dims(i.shape)}\n`);
  for (const o of model.outputs) io.out(`  output ${o.name}: ${o.dtype} ${dims(o.shape)}\n`);
  io.out(`  operators: ${[...model.operators].map(([op, n]) => (n > 1 ? `${op} ×${n}` : op)).join(', ') || '(none)'}\n`);
  return 0;
}

function kerasCmd(file: string, argv: string[], io: CliIO): number {
  let check: string | undefined;
  let hardSigmoid: HardSigmoidConvention | undefined;
  let reference = false;
  let atol = 1e-5;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check') check = argv[++i];
    else if (a === '--hard-sigmoid') {
      const v = argv[++i];
      if (v !== 'keras2' && v !== 'keras3') throw new UsageError(`--hard-sigmoid expects keras2 or keras3, got '${String(v)}'`);
      hardSigmoid = v;
    } else if (a === '--reference') reference = true;
    else if (a === '--atol') {
      atol = Number(argv[++i]);
      if (!(atol >= 0)) throw new UsageError('--atol expects a non-negative number');
    } else throw new UsageError(`unknown option '${a}' for a Keras model.json\n${IMPORT_USAGE}`);
  }
  if (argv.includes('--check') && !check) throw new UsageError('--check expects INPUT.json');
  const model = loadKerasModel(file, { ...(hardSigmoid ? { hardSigmoid } : {}), forceReference: reference });
  if (!check) {
    io.out(model.summary);
    return 0;
  }
  const { input, expected } = parseInputJson(check);
  const y = model.predict(input);
  io.out(`${JSON.stringify({ shape: y.shape, data: Array.from(y.data) })}\n`);
  if (!expected) return 0;
  const same = expected.shape.length === y.shape.length && expected.shape.every((d, i) => d === y.shape[i]);
  if (!same) {
    io.err(`FAIL: output shape [${y.shape.join(', ')}], expected [${expected.shape.join(', ')}]\n`);
    return 1;
  }
  let worst = 0;
  for (let i = 0; i < y.data.length; i++) worst = Math.max(worst, Math.abs(y.data[i] - expected.data[i]));
  const pass = worst <= atol;
  io.err(`${pass ? 'PASS' : 'FAIL'}: max abs error ${worst.toExponential(2)} (atol ${atol})\n`);
  return pass ? 0 : 1;
}

function safetensorsCmd(file: string, argv: string[], io: CliIO): number {
  let arch: string | undefined, out: string | undefined;
  let inputSize: number | undefined, hiddenSize: number | undefined, numLayers = 1;
  let bidirectional = false, batchFirst = false;
  const int = (s: string | undefined, name: string): number => {
    const v = Number(s);
    if (s === undefined || !Number.isSafeInteger(v) || v < 1) throw new UsageError(`${name} expects a positive integer, got '${String(s)}'`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--arch') arch = argv[++i];
    else if (a === '--input-size') inputSize = int(argv[++i], a);
    else if (a === '--hidden-size') hiddenSize = int(argv[++i], a);
    else if (a === '--num-layers') numLayers = int(argv[++i], a);
    else if (a === '--bidirectional') bidirectional = true;
    else if (a === '--batch-first') batchFirst = true;
    else if (a === '-o' || a === '--output') out = argv[++i];
    else throw new UsageError(`unknown option '${a}' for a safetensors file\n${IMPORT_USAGE}`);
  }
  if (arch === undefined) throw new UsageError(`a safetensors state_dict needs --arch (${IMPORT_ARCHS.join(', ')})`);
  if (!(IMPORT_ARCHS as readonly string[]).includes(arch)) throw new UsageError(`unknown --arch '${arch}' (supported: ${IMPORT_ARCHS.join(', ')})`);
  if (inputSize === undefined || hiddenSize === undefined) throw new UsageError('--input-size and --hidden-size are required');
  if (out !== undefined && out === '') throw new UsageError('-o expects a file name');
  const config: RecurrentImportConfig = { arch: arch as ImportArch, inputSize, hiddenSize, numLayers, bidirectional, batchFirst };
  const layer = buildRecurrentLayer(config);
  loadModelInto(layer, file);
  const n = layer.numParameters();
  io.out(`${file}: loaded ${layer.namedParameters().length} tensors (${n} parameters) into ${arch}(inputSize=${inputSize}, hiddenSize=${hiddenSize}, numLayers=${numLayers}${bidirectional ? ', bidirectional' : ''})\n`);
  if (out) {
    saveModel(out, layer, { config, metadata: { 'recur.imported_from': basename(file) } });
    io.out(`wrote ${out}\n`);
  }
  return 0;
}

/** `recur import FILE ...`. */
export async function importCommand(argv: string[], io: CliIO = stdio): Promise<number> {
  try {
    if (argv.length === 0) {
      io.err(IMPORT_USAGE);
      return 2;
    }
    if (argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      io.out(IMPORT_USAGE);
      return 0;
    }
    const [file, ...rest] = argv;
    if (file.startsWith('-')) throw new UsageError(`expected FILE first, got '${file}'\n${IMPORT_USAGE}`);
    if (!existsSync(file)) throw new Error(`'${file}' does not exist`);
    const ext = extname(file).toLowerCase();
    if (ext === '.onnx') return onnxInfo(file, rest, io);
    if (ext === '.json') return kerasCmd(file, rest, io);
    if (ext === '.safetensors') return safetensorsCmd(file, rest, io);
    throw new UsageError(`cannot tell the format of '${file}' from its extension (expected .onnx, .json for a Keras/TF.js model.json, or .safetensors)`);
  } catch (e) {
    return reportError(io, e);
  }
}

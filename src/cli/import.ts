/**
 * `recur import`: look at and check models made elsewhere, and convert PyTorch recurrent layers.
 * A function that takes argv (after the command name) and resolves to an exit code (0 success,
 * 1 a failed --check); a wrong command line throws a UsageError, a failure a CliError.
 *
 *   recur import MODEL.onnx [-o OUT.safetensors]
 *       print the model's opset, inputs, outputs and the operators it uses; with -o, convert a
 *       recurrent pipeline (embedding → RNN/GRU/LSTM stack → pooling → linear heads) to a recur
 *       model file with PyTorch's names (onnx/convert.ts), or say which node stops it
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
import { loadModelInto, saveModel } from '../io/files.ts';
import { createRecurrent, RECURRENT_KINDS, type RecurrentBase, type RecurrentKind } from '../nn/recurrent.ts';
import { loadKerasModel, type HardSigmoidConvention, type KerasInput } from '../interop/keras-file.ts';
import { CliError, flagLines, flagSpec, flagSynopsis, HELP_FLAG, OptionReader, parseOrHelp, stdio, UsageError, type CliIO, type Flag, type Parsed } from './args.ts';
import { userError } from './format.ts';
import { isRecord } from '../util/options.ts';
import { isNumberArray, isShape } from '../util/shape.ts';
import { checkOutput, describeOnnx } from './onnx.ts';
import { convertOnnx } from '../onnx/convert.ts';
import { OnnxError } from '../onnx/proto.ts';

/** The options of a Keras / TF.js model.json. */
const KERAS_FLAGS: Record<string, Flag> = {
  check: { type: 'string', value: 'INPUT.json', help: 'run it on INPUT.json ({"shape": [...], "data": [...]}, a nested\narray, or {"input": ..., "output": ...} to compare with an expected\noutput) and print the output as JSON' },
  atol: { type: 'string', value: 'A', help: 'tolerance for the comparison (default 1e-5)' },
  'hard-sigmoid': { type: 'string', value: 'keras2|keras3', help: 'which hard_sigmoid (default: from keras_version)' },
  reference: { type: 'boolean', help: 'run every recurrent layer on the host reference implementation' },
};

/** The layer a PyTorch state_dict holds (its usage: one line of sizes, one of switches). */
const LAYER_FLAGS: Record<string, Flag> = {
  arch: { type: 'string', value: RECURRENT_KINDS.join('|'), required: true, help: 'the PyTorch module: nn.RNN (tanh or relu), nn.LSTM or nn.GRU' },
  'input-size': { type: 'string', value: 'N', required: true, help: 'input features' },
  'hidden-size': { type: 'string', value: 'H', required: true, help: 'hidden state size' },
  'num-layers': { type: 'string', value: 'L', help: 'stacked layers (default 1)' },
};
const LAYOUT_FLAGS: Record<string, Flag> = {
  bidirectional: { type: 'boolean', help: 'the layer reads both directions' },
  'batch-first': { type: 'boolean', help: 'the layer takes [B, T, F] input' },
};
const OUTPUT_FLAGS: Record<string, Flag> = {
  output: { type: 'string', short: 'o', shortForm: true, value: 'OUT', help: 'write a recur model file with the architecture in recur.config' },
  force: { type: 'boolean', help: 'replace OUT if it exists (an existing file is refused without it)' },
};
const SAFETENSORS_FLAGS = { ...LAYER_FLAGS, ...LAYOUT_FLAGS, ...OUTPUT_FLAGS };
/** The same -o and --force, said of an ONNX graph. */
const ONNX_FLAGS: Record<string, Flag> = {
  output: { ...OUTPUT_FLAGS.output!, help: 'convert a recurrent pipeline (embedding, RNN/GRU/LSTM layers,\npooling, linear heads, softmax) to a recur model file that\nfine-tunes, with PyTorch\'s tensor names; other graphs are refused\nnaming the node that stops the conversion' },
  force: { ...OUTPUT_FLAGS.force!, help: 'replace OUT if it exists' },
};
const HELP: Record<string, Flag> = { help: HELP_FLAG };

export const IMPORT_USAGE = `usage: recur import FILE [options]
  FILE.onnx                 print the model's opset, inputs, outputs and operators
${flagLines(ONNX_FLAGS, 28, 4)}  model.json                a Keras / TF.js layers model: print its summary
${flagLines(KERAS_FLAGS, 28, 4)}  FILE.safetensors          a PyTorch nn.RNN / nn.LSTM / nn.GRU state_dict
    ${flagSynopsis(LAYER_FLAGS)}
    ${flagSynopsis(LAYOUT_FLAGS)}
${flagLines(OUTPUT_FLAGS, 28, 4)}`;

/** The recur.config written for an imported recurrent layer. */
export interface RecurrentImportConfig {
  arch: RecurrentKind;
  inputSize: number;
  hiddenSize: number;
  numLayers: number;
  bidirectional: boolean;
  batchFirst: boolean;
}

/** Build the recur layer a RecurrentImportConfig describes. */
export function buildRecurrentLayer(c: RecurrentImportConfig): RecurrentBase {
  return createRecurrent(c.arch, { inputSize: c.inputSize, hiddenSize: c.hiddenSize, numLayers: c.numLayers, bidirectional: c.bidirectional, batchFirst: c.batchFirst });
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
      const data: unknown[] = x.flat(Infinity);
      if (!isNumberArray(data)) throw new Error(`${what}: expected numbers`);
      if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`${what}: the nested array is not rectangular`);
      return { shape, data };
    }
    if (isRecord(x) && 'shape' in x && 'data' in x) {
      if (!Array.isArray(x.shape) || !Array.isArray(x.data)) throw new Error(`${what}: shape and data must be arrays`);
      if (!isShape(x.shape)) throw new Error(`${what}: shape must be an array of non-negative integers`);
      const data: unknown[] = x.data.flat(Infinity);
      if (!isNumberArray(data)) throw new Error(`${what}: expected numbers in data`);
      return { shape: x.shape, data };
    }
    throw new Error(`${what}: expected {"shape": [...], "data": [...]} or a nested array`);
  };
  if (isRecord(v) && 'input' in v) {
    return { input: asTensor(v.input, `${path} input`), expected: v.output === undefined ? null : asTensor(v.output, `${path} output`) };
  }
  return { input: asTensor(v, path), expected: null };
}

/** Every option of `recur import`: the options of each kind of file, and --help. */
const IMPORT_FLAGS = { ...KERAS_FLAGS, ...SAFETENSORS_FLAGS, ...HELP };

/** An option given for a kind of file it does not apply to is a usage error naming both. */
function onlyOptions(values: Parsed['values'], allowed: Record<string, Flag>, kind: string): void {
  for (const k of Object.keys(values)) {
    if (values[k] === undefined || Object.hasOwn(allowed, k)) continue;
    const own = Object.entries(allowed).filter(([a]) => a !== 'help').map(([a, f]) => (f.shortForm ? `-${f.short}` : `--${a}`));
    throw new UsageError(`--${k} does not apply to ${kind} (${own.length ? `its options: ${own.join(', ')}` : 'it takes no options'})`);
  }
}

function kerasCmd(file: string, r: OptionReader, io: CliIO): number {
  const check = r.string('check');
  const hs = r.string('hard-sigmoid');
  if (hs !== undefined && hs !== 'keras2' && hs !== 'keras3') throw new UsageError(`--hard-sigmoid must be keras2 or keras3, got '${hs}'`);
  const hardSigmoid = hs as HardSigmoidConvention | undefined;
  const reference = r.flag('reference');
  const atol = r.number('atol', 'nonnegative') ?? 1e-5;
  if (check === '') throw new UsageError('--check needs INPUT.json');
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

function safetensorsCmd(file: string, r: OptionReader, io: CliIO): number {
  const arch = r.string('arch');
  if (arch === undefined) throw new UsageError(`a safetensors state_dict needs --arch (${RECURRENT_KINDS.join(', ')})`);
  if (!(RECURRENT_KINDS as readonly string[]).includes(arch)) throw new UsageError(`unknown --arch '${arch}' (supported: ${RECURRENT_KINDS.join(', ')})`);
  const inputSize = r.int('input-size', 1);
  const hiddenSize = r.int('hidden-size', 1);
  const numLayers = r.int('num-layers', 1) ?? 1;
  const bidirectional = r.flag('bidirectional'), batchFirst = r.flag('batch-first');
  if (inputSize === undefined || hiddenSize === undefined) throw new UsageError('--input-size and --hidden-size are required');
  const out = r.string('output');
  if (out !== undefined) checkOutput(out, r.flag('force'));
  const config: RecurrentImportConfig = { arch: arch as RecurrentKind, inputSize, hiddenSize, numLayers, bidirectional, batchFirst };
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

/** Inspect an ONNX file; with -o, convert its recurrent pipeline to a recur model file. */
function onnxCmd(file: string, r: OptionReader, io: CliIO): number {
  const bytes = readFileSync(file);
  const out = r.string('output');
  if (out === undefined) {
    if (r.flag('force')) throw new UsageError('--force applies with -o OUT');
    io.out(describeOnnx(file, bytes));
    return 0;
  }
  checkOutput(out, r.flag('force'));
  let converted;
  try {
    converted = convertOnnx(bytes);
  } catch (e) {
    // a graph outside the pattern (OnnxConvertError) or a malformed one (OnnxError): the reason, one line
    if (e instanceof OnnxError) throw new CliError(`${file}: cannot convert: ${e.message}`);
    throw e;
  }
  const { model, config, summary } = converted;
  saveModel(out, model, { config, metadata: { 'recur.imported_from': basename(file) } });
  io.out(`${file}: a recurrent pipeline, ${model.numParameters()} parameters in ${model.namedParameters().length} tensors\n${summary}wrote ${out}\n`);
  return 0;
}

/** `recur import FILE ...`. Errors are thrown (UsageError, CliError); main prints them. */
export async function importCommand(argv: string[], io: CliIO = stdio): Promise<number> {
  const parsed = parseOrHelp('recur import', argv, flagSpec(IMPORT_FLAGS), 1, IMPORT_USAGE, io.out);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const file = positionals[0];
  if (file === undefined) throw new UsageError('missing the FILE argument (.onnx, a Keras/TF.js model.json, or .safetensors)');
  const ext = extname(file).toLowerCase();
  const kind = ext === '.onnx' ? 'an ONNX file' : ext === '.json' ? 'a Keras model.json' : ext === '.safetensors' ? 'a safetensors state_dict' : null;
  if (kind === null) throw new UsageError(`cannot tell the format of '${file}' from its extension (expected .onnx, .json for a Keras/TF.js model.json, or .safetensors)`);
  onlyOptions(values, ext === '.onnx' ? { ...ONNX_FLAGS, ...HELP } : ext === '.json' ? { ...KERAS_FLAGS, ...HELP } : { ...SAFETENSORS_FLAGS, ...HELP }, kind);
  if (!existsSync(file)) throw new CliError(`'${file}' does not exist`);
  const r = new OptionReader('recur import', values);
  try {
    if (ext === '.onnx') return onnxCmd(file, r, io);
    return ext === '.json' ? kerasCmd(file, r, io) : safetensorsCmd(file, r, io);
  } catch (e) {
    throw userError(e);
  }
}

/**
 * Run ONNX backend test cases, the format the ONNX project (and onnxruntime's onnx_test_runner)
 * uses: a folder with `model.onnx` and `test_data_set_*` folders holding `input_N.pb` /
 * `output_N.pb` (serialized TensorProtos). Input N feeds the model's N-th graph input (or the
 * input the tensor names, when it carries a name); output N is compared with the N-th graph output.
 *
 * An output passes when its shape matches and every element satisfies
 * |actual − expected| ≤ atol + rtol·|expected| (NaN matches NaN). Node.js only (reads files).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, basename } from 'node:path';
import { OnnxError, decodeTensorProto } from './proto.ts';
import { tensorFromProto, type OnnxTensor } from './tensor.ts';
import { loadOnnx, type OnnxInput, type LoadOnnxOptions } from './model.ts';

export interface Tolerance {
  /** Relative tolerance (default 1e-5). */
  rtol?: number;
  /** Absolute tolerance (default 1e-6). */
  atol?: number;
}

export interface OutputCheck {
  name: string;
  pass: boolean;
  /** Largest |actual − expected|. */
  maxAbs: number;
  /** Largest |actual − expected| / |expected| over elements with expected ≠ 0. */
  maxRel: number;
  /** Why it failed, when it failed for a reason other than the values (shape, type, missing). */
  message?: string;
}

export interface DataSetResult {
  name: string;
  pass: boolean;
  outputs: OutputCheck[];
  error?: string;
}

export interface TestCaseResult {
  dir: string;
  name: string;
  pass: boolean;
  dataSets: DataSetResult[];
  /** Set when the model itself could not be loaded. */
  error?: string;
}

/** The test-case folders at or under `dir` (a folder with model.onnx is one case), sorted. */
export function findTestCases(dir: string, maxDepth = 4): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new OnnxError(`'${dir}' is not a folder`);
  if (existsSync(join(dir, 'model.onnx'))) return [dir];
  if (maxDepth === 0) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory()) out.push(...findTestCases(join(dir, e.name), maxDepth - 1));
  }
  return out;
}

function readTensorFile(path: string): { name: string; tensor: OnnxTensor } {
  const tp = decodeTensorProto(readFileSync(path), basename(path));
  return { name: tp.name ?? '', tensor: tensorFromProto(tp, basename(path)) };
}

function numbered(dir: string, prefix: string): string[] {
  const files = readdirSync(dir).filter((f) => new RegExp(`^${prefix}_\\d+\\.pb$`).test(f));
  return files.sort((a, b) => Number(a.slice(prefix.length + 1, -3)) - Number(b.slice(prefix.length + 1, -3))).map((f) => join(dir, f));
}

/** Compare an output with its expectation. */
export function compareTensors(name: string, actual: OnnxTensor, expected: OnnxTensor, tol: Tolerance = {}): OutputCheck {
  const rtol = tol.rtol ?? 1e-5, atol = tol.atol ?? 1e-6;
  const fail = (message: string): OutputCheck => ({ name, pass: false, maxAbs: NaN, maxRel: NaN, message });
  if (actual.shape.length !== expected.shape.length || actual.shape.some((s, i) => s !== expected.shape[i])) {
    return fail(`shape [${actual.shape.join(', ')}], expected [${expected.shape.join(', ')}]`);
  }
  const isF = (d: string): boolean => d === 'float32' || d === 'float64';
  if (isF(actual.dtype) !== isF(expected.dtype)) return fail(`element type ${actual.dtype}, expected ${expected.dtype}`);
  let maxAbs = 0, maxRel = 0, pass = true;
  for (let i = 0; i < expected.data.length; i++) {
    const a = actual.data[i], e = expected.data[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    const d = Math.abs(a - e);
    if (!(d <= atol + rtol * Math.abs(e))) pass = false;
    if (Number.isNaN(d)) {
      maxAbs = NaN;
      continue;
    }
    if (d > maxAbs) maxAbs = d;
    if (e !== 0 && d / Math.abs(e) > maxRel) maxRel = d / Math.abs(e);
  }
  return { name, pass, maxAbs, maxRel };
}

/** Run one test-case folder. Never throws for a bad model or data; reports it as a failure. */
export function runTestCase(dir: string, tol: Tolerance = {}, load: LoadOnnxOptions = {}): TestCaseResult {
  const name = basename(dir);
  let model;
  try {
    model = loadOnnx(readFileSync(join(dir, 'model.onnx')), load);
  } catch (e) {
    return { dir, name, pass: false, dataSets: [], error: (e as Error).message };
  }
  const sets = readdirSync(dir).filter((f) => f.startsWith('test_data_set_') && statSync(join(dir, f)).isDirectory()).sort();
  if (sets.length === 0) return { dir, name, pass: false, dataSets: [], error: 'no test_data_set_* folder' };
  const dataSets: DataSetResult[] = sets.map((set) => {
    const sdir = join(dir, set);
    try {
      const inputs: Record<string, OnnxInput> = {};
      numbered(sdir, 'input').forEach((f, i) => {
        const { name: tname, tensor } = readTensorFile(f);
        const byName = model.inputs.find((inp) => inp.name === tname);
        const info = byName ?? model.inputs[i];
        if (!info) throw new OnnxError(`${basename(f)}: the model has only ${model.inputs.length} inputs`);
        inputs[info.name] = { shape: tensor.shape, data: tensor.data };
      });
      const actual = model.run(inputs);
      const outputs = numbered(sdir, 'output').map((f, i) => {
        const { name: tname, tensor } = readTensorFile(f);
        const info = model.outputs.find((o) => o.name === tname) ?? model.outputs[i];
        if (!info) return { name: basename(f), pass: false, maxAbs: NaN, maxRel: NaN, message: `the model has only ${model.outputs.length} outputs` };
        return compareTensors(info.name, actual[info.name], tensor, tol);
      });
      if (outputs.length === 0) return { name: set, pass: false, outputs, error: 'no output_*.pb files' };
      return { name: set, pass: outputs.every((o) => o.pass), outputs };
    } catch (e) {
      return { name: set, pass: false, outputs: [], error: (e as Error).message };
    }
  });
  return { dir, name, pass: dataSets.every((s) => s.pass), dataSets };
}

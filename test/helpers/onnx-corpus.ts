/**
 * The corpus of exported ONNX models (test/fixtures/onnx-corpus, made by
 * scripts/make_onnx_corpus.py): its manifest, and reading a case's test data sets. Shared by the
 * runner's differential test (onnx.corpus) and the converter's (onnx.convert).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeTensorProto } from '../../src/onnx/proto.ts';
import { tensorFromProto, type OnnxTensor } from '../../src/onnx/tensor.ts';

export const CORPUS = fileURLToPath(new URL('../fixtures/onnx-corpus', import.meta.url));

/** The PyTorch module a case was exported from (for Keras patterns: the layer they stand for). */
export interface CorpusLayers {
  kind: 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU';
  numLayers: number;
  bidirectional: boolean;
  batchFirst: boolean;
  hiddenSize: number;
  inputSize: number;
  embedding: { numEmbeddings: number; dim: number } | null;
  head: string;
  initialState: boolean;
}

export interface CorpusCase {
  name: string;
  source: 'pytorch' | 'keras-pattern';
  opset: number;
  /** A recurrent pipeline (embedding or features → recurrent stack → heads) a converter can take. */
  pipeline: boolean;
  layers: CorpusLayers;
  inputs: string[];
  outputs: string[];
}

export const manifest = JSON.parse(readFileSync(join(CORPUS, 'manifest.json'), 'utf8')) as { cases: CorpusCase[]; heads: Record<string, string> };

export function readPb(path: string): OnnxTensor {
  return tensorFromProto(decodeTensorProto(readFileSync(path), path), path);
}

/** `PREFIX_0.pb`, `PREFIX_1.pb`, … of a data set folder, in numeric order. */
export function numbered(dir: string, prefix: string): string[] {
  return readdirSync(dir).filter((f) => f.startsWith(`${prefix}_`)).sort((a, b) => Number(a.slice(prefix.length + 1, -3)) - Number(b.slice(prefix.length + 1, -3))).map((f) => join(dir, f));
}

/** A case's test_data_set_* folders. */
export function dataSets(caseDir: string): string[] {
  return readdirSync(caseDir).filter((f) => f.startsWith('test_data_set_')).sort().map((f) => join(caseDir, f));
}

/** Largest |a − b| / max(1, |b|); Infinity on a length mismatch or a NaN. */
export function worst(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let w = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(d <= w)) w = Number.isNaN(d) ? Infinity : d;
  }
  return w;
}

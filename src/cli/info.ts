/** `recur info MODEL`: what is inside a model file. */
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { loadSafetensors } from '../io/files.ts';
import { describeModelFile } from '../io/model.ts';
import { checkLimit, resolveLimits, type Limits } from '../io/limits.ts';
import { CliError } from './args.ts';
import { fileError, formatBytes, formatInt, oneLine } from './format.ts';

export interface ModelInfo {
  file: string;
  bytes: number;
  /** The parsed `recur.config`, or null when the file has none (e.g. saved from PyTorch). */
  config: unknown;
  numParameters: number;
  /** Characters/tokens in `recur.vocab`, or null when the file has none. */
  vocabSize: number | null;
  /** Every metadata key, in file order. */
  metadataKeys: string[];
  /** Metadata values, except `recur.config` (see config) and `recur.vocab` (see vocabSize). */
  metadata: Record<string, string>;
  tensors: { name: string; dtype: string; shape: number[] }[];
}

function parseJsonOr(s: string | undefined): { ok: boolean; value: unknown } {
  if (s === undefined) return { ok: true, value: null };
  try {
    return { ok: true, value: JSON.parse(s) };
  } catch {
    return { ok: false, value: null };
  }
}

function vocabSizeOf(v: unknown): number | null {
  if (Array.isArray(v)) return v.length;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    for (const k of ['chars', 'tokens', 'itos']) if (Array.isArray(o[k])) return (o[k] as unknown[]).length;
    return Object.keys(o).length;
  }
  if (typeof v === 'string') return [...v].length;
  return null;
}

/** Read and summarise a model file; a CliError (exit 1) when it is missing or malformed. */
export function readModelInfo(path: string, limits: Partial<Limits> = {}): ModelInfo {
  const lim = resolveLimits(limits);
  let decoded;
  try {
    // the size first: a file over the limit is refused before it is read whole
    checkLimit(lim, 'fileBytes', statSync(path).size, 'bytes of the model file');
    decoded = loadSafetensors(path, { limits: lim });
  } catch (e) {
    throw fileError(path, e);
  }
  const { tensors, metadata } = decoded;
  const cfg = parseJsonOr(metadata['recur.config']);
  if (!cfg.ok) throw new CliError(`${path}: metadata 'recur.config' is not valid JSON`);
  const vocab = parseJsonOr(metadata['recur.vocab']);
  if (!vocab.ok) throw new CliError(`${path}: metadata 'recur.vocab' is not valid JSON`);
  const summary = describeModelFile({ tensors, metadata, config: cfg.value, vocab: vocab.value });
  // No prototype: a metadata key '__proto__' is then an ordinary key (on a plain object the
  // assignment would go to the prototype setter and the value would be lost, or worse, read back
  // as Object.prototype).
  const rest = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(metadata)) if (k !== 'recur.config' && k !== 'recur.vocab') rest[k] = v;
  return {
    file: path,
    bytes: statSync(path).size,
    config: cfg.value,
    numParameters: summary.numParameters,
    vocabSize: 'recur.vocab' in metadata ? vocabSizeOf(vocab.value) : null,
    metadataKeys: Object.keys(metadata),
    metadata: rest,
    tensors: summary.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })),
  };
}

function describeArch(config: unknown): string {
  if (config === null) return 'unknown (no recur.config metadata; e.g. a state_dict saved from PyTorch)';
  if (config && typeof config === 'object' && !Array.isArray(config)) {
    const { arch, ...rest } = config as Record<string, unknown>;
    const parts = Object.entries(rest).map(([k, v]) => `${k} ${typeof v === 'string' ? v : JSON.stringify(v)}`);
    return `${typeof arch === 'string' ? arch : JSON.stringify(arch ?? null)}${parts.length ? ` (${parts.join(', ')})` : ''}`;
  }
  return JSON.stringify(config);
}

const MAX_VALUE = 70;

export function formatModelInfo(info: ModelInfo): string {
  const out: string[] = [];
  out.push(`${basename(info.file)}  (${formatBytes(info.bytes)}, safetensors)`);
  out.push(`architecture  ${describeArch(info.config)}`);
  out.push(`parameters    ${formatInt(info.numParameters)}`);
  if (info.vocabSize !== null) out.push(`vocabulary    ${formatInt(info.vocabSize)} tokens`);
  out.push('');
  if (info.metadataKeys.length === 0) {
    out.push('metadata: none');
  } else {
    out.push(`metadata (${info.metadataKeys.length} keys):`);
    // loops, not Math.max(...list): a spread of a file-controlled list overflows the stack
    let w = 0;
    for (const k of info.metadataKeys) w = Math.max(w, k.length);
    for (const k of info.metadataKeys) {
      let v: string;
      if (k === 'recur.vocab') v = info.vocabSize === null ? '(vocabulary)' : `(vocabulary of ${formatInt(info.vocabSize)} tokens)`;
      else if (k === 'recur.config') v = '(architecture, above)';
      else v = oneLine(info.metadata[k], MAX_VALUE);
      out.push(`  ${k.padEnd(w)}  ${v}`);
    }
  }
  out.push('');
  out.push(`tensors (${info.tensors.length}):`);
  const rows = info.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, formatInt(t.shape.reduce((a, b) => a * b, 1))]);
  const head = ['name', 'dtype', 'shape', 'values'];
  const widths = head.map((h) => h.length);
  for (const r of rows) for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i], r[i].length);
  const line = (r: string[]): string => `  ${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2].padEnd(widths[2])}  ${r[3].padStart(widths[3])}`;
  out.push(line(head));
  for (const r of rows) out.push(line(r));
  return out.join('\n') + '\n';
}

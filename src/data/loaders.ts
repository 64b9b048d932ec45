/**
 * Loaders for the three file kinds the tasks read: plain text, CSV (numeric time series) and JSONL
 * pairs. Each loader has a `parse*` form on a string (with a `source` name used in messages); the
 * `load*` forms on a path are in files.ts (Node.js, the `recurjs/node` entry).
 *
 * Every bad input is an early `DataError` that names the file and the place:
 * - an empty file (or one holding only blank lines);
 * - CSV: a row with the wrong number of cells (row and line), a cell that is not a decimal number
 *   (row, line and column name; empty cells, "NaN", "Infinity" and hex are refused), an unknown
 *   column name (with the available ones), a header without data rows;
 * - JSONL: a line that is not JSON, not an object, or lacks the input/target key (line number).
 *
 * Normalisation: `fitNormStats` computes per-column mean/std on TRAINING rows only; the stats are
 * plain JSON ({columns, mean, std}) so a task stores them in its model config and applies the
 * same transform at inference.
 */
import { isRecord } from '../util/options.ts';

export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

export function checkNotEmpty(text: string, source: string): void {
  if (text.trim().length === 0) throw new DataError(`${source}: the file is empty`);
}

// ---- plain text -------------------------------------------------------------------------------


/** The non-blank lines of a text, trimmed at the end (for one-example-per-line files). */
export function parseLines(text: string, source = '<text>'): string[] {
  checkNotEmpty(text, source);
  return text.split(/\r?\n/).map((l) => l.replace(/\s+$/, '')).filter((l) => l.length > 0);
}


// ---- CSV ----------------------------------------------------------------------------------------

export interface CsvTable {
  header: string[];
  /** Data rows (cells as strings), each with header.length cells. */
  rows: string[][];
  /** The 1-based line where each data row starts (for messages). */
  lines: number[];
}

/**
 * RFC 4180 CSV: a header row, then data rows; quoted cells may hold commas, quotes ("") and
 * newlines. Blank lines are skipped.
 */
export function parseCSV(text: string, opts: { source?: string; delimiter?: string } = {}): CsvTable {
  const source = opts.source ?? '<csv>';
  const delim = opts.delimiter ?? ',';
  if (delim.length !== 1 || delim === '"' || delim === '\n') throw new DataError(`parseCSV: delimiter must be one character other than a quote or newline, got ${JSON.stringify(delim)}`);
  checkNotEmpty(text, source);
  const records: { cells: string[]; line: number }[] = [];
  let cells: string[] = [];
  let cell = '';
  let inQuotes = false;
  let line = 1;
  let startLine = 1;
  let rowHasContent = false;
  const endRow = (): void => {
    cells.push(cell);
    if (rowHasContent || cells.length > 1 || cell.length > 0) records.push({ cells, line: startLine });
    cells = [];
    cell = '';
    rowHasContent = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (ch === '\n') line++;
        cell += ch;
      }
      continue;
    }
    if (ch === '"' && cell.length === 0) {
      inQuotes = true;
      rowHasContent = true;
    } else if (ch === delim) {
      cells.push(cell);
      cell = '';
      rowHasContent = true;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
      startLine = line;
    } else {
      cell += ch;
    }
  }
  if (inQuotes) throw new DataError(`${source}: a quoted cell that starts on line ${startLine} is never closed`);
  endRow();
  if (records.length === 0) throw new DataError(`${source}: the file is empty`);
  const header = records[0].cells.map((h) => h.trim());
  header.forEach((h, i) => {
    if (h.length === 0) throw new DataError(`${source}: header column ${i + 1} has no name`);
    if (header.indexOf(h) !== i) throw new DataError(`${source}: the header names column '${h}' twice`);
  });
  const rows: string[][] = [];
  const lines: number[] = [];
  for (let r = 1; r < records.length; r++) {
    const rec = records[r];
    if (rec.cells.length !== header.length) {
      throw new DataError(`${source}: row ${r} (line ${rec.line}) has ${rec.cells.length} cells, the header has ${header.length} (${header.join(', ')})`);
    }
    rows.push(rec.cells);
    lines.push(rec.line);
  }
  if (rows.length === 0) throw new DataError(`${source}: the file has a header but no data rows`);
  return { header, rows, lines };
}

const NUMBER_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Parse one numeric cell; anything but a finite decimal number is an error naming its place. */
export function parseNumberCell(cell: string, where: string): number {
  const s = cell.trim();
  if (s.length === 0) throw new DataError(`${where}: the cell is empty (expected a number)`);
  if (!NUMBER_RE.test(s)) throw new DataError(`${where}: ${JSON.stringify(cell)} is not a number`);
  const v = Number(s);
  if (!Number.isFinite(v)) throw new DataError(`${where}: ${JSON.stringify(cell)} is out of range`);
  return v;
}

export interface NumericTable {
  /** The selected column names, in output order. */
  columns: string[];
  /** rows × columns */
  data: number[][];
}

/**
 * A CSV whose selected columns (default: all) are numeric: every cell of them must be a number.
 * Other columns are ignored (and may hold anything).
 */
export function parseNumericCSV(text: string, opts: { source?: string; columns?: readonly string[]; delimiter?: string } = {}): NumericTable {
  const source = opts.source ?? '<csv>';
  const table = parseCSV(text, { source, delimiter: opts.delimiter });
  const columns = opts.columns ? [...opts.columns] : table.header;
  if (columns.length === 0) throw new DataError(`${source}: no columns selected`);
  const idx = columns.map((c) => {
    const i = table.header.indexOf(c);
    if (i < 0) throw new DataError(`${source}: no column '${c}' (the columns are: ${table.header.join(', ')})`);
    return i;
  });
  const data = table.rows.map((row, r) => idx.map((ci, k) => parseNumberCell(row[ci], `${source}: row ${r + 1} (line ${table.lines[r]}), column '${columns[k]}'`)));
  return { columns, data };
}


// ---- normalisation --------------------------------------------------------------------------------

/** Per-column standardisation: x' = (x − mean) / std. Plain JSON, stored in model configs. */
export interface NormStats {
  columns: string[];
  mean: number[];
  std: number[];
}

/** Mean and (population) std per column of training rows; a constant column gets std 1. */
export function fitNormStats(rows: readonly (readonly number[])[], columns: readonly string[]): NormStats {
  if (rows.length === 0) throw new DataError('fitNormStats: no rows');
  const F = columns.length;
  const mean = new Array<number>(F).fill(0);
  const std = new Array<number>(F).fill(0);
  for (const r of rows) {
    if (r.length !== F) throw new DataError(`fitNormStats: a row has ${r.length} values, expected ${F} (${columns.join(', ')})`);
    for (let f = 0; f < F; f++) mean[f] += r[f];
  }
  for (let f = 0; f < F; f++) mean[f] /= rows.length;
  for (const r of rows) for (let f = 0; f < F; f++) std[f] += (r[f] - mean[f]) ** 2;
  for (let f = 0; f < F; f++) {
    const s = Math.sqrt(std[f] / rows.length);
    std[f] = s > 1e-12 ? s : 1;
    // values near the float64 limit (1e300 and up) overflow the sum or the squares: the stats
    // would be ±Infinity or NaN, stored as null in the model's JSON config, and the model written
    // could never be loaded
    if (!Number.isFinite(mean[f]) || !Number.isFinite(std[f])) {
      let max = 0;
      for (const r of rows) if (Math.abs(r[f]) > max) max = Math.abs(r[f]);
      throw new DataError(`fitNormStats: column '${columns[f]}' has values too large to normalise (largest magnitude ${max.toPrecision(3)}; its ${Number.isFinite(mean[f]) ? 'standard deviation' : 'mean'} overflows to ${Number.isFinite(mean[f]) ? std[f] : mean[f]}); rescale the column`);
    }
  }
  return { columns: [...columns], mean, std };
}

/** Validate stats read back from a model config. */
export function checkNormStats(json: unknown, where = 'normalisation stats'): NormStats {
  if (!isRecord(json) || !Array.isArray(json.columns) || !Array.isArray(json.mean) || !Array.isArray(json.std)) {
    throw new DataError(`${where}: expected {columns: string[], mean: number[], std: number[]}`);
  }
  const columns: unknown[] = json.columns, means: unknown[] = json.mean, stds: unknown[] = json.std;
  const F = columns.length;
  if (F === 0 || means.length !== F || stds.length !== F) throw new DataError(`${where}: columns, mean and std must have the same non-zero length`);
  const out: NormStats = { columns: [], mean: [], std: [] };
  for (let f = 0; f < F; f++) {
    const column = columns[f], mean = means[f], std = stds[f];
    if (typeof column !== 'string') throw new DataError(`${where}: column ${f} has no name`);
    // typeof checks: "5" > 0 is true in JavaScript, and a stored std of "5" or Infinity is no std
    if (typeof mean !== 'number' || !Number.isFinite(mean) || typeof std !== 'number' || !Number.isFinite(std) || !(std > 0)) throw new DataError(`${where}: column '${column}' needs a finite mean and a positive std (finite)`);
    out.columns.push(column);
    out.mean.push(mean);
    out.std.push(std);
  }
  return out;
}

export function normalizeRows(rows: readonly (readonly number[])[], s: NormStats): number[][] {
  return rows.map((r) => r.map((v, f) => (v - s.mean[f]) / s.std[f]));
}

export function denormalizeRow(row: ArrayLike<number>, s: NormStats): number[] {
  return Array.from({ length: s.columns.length }, (_, f) => row[f] * s.std[f] + s.mean[f]);
}

// ---- JSONL pairs ------------------------------------------------------------------------------------

export interface TextPair {
  input: string;
  target: string;
}

/**
 * One JSON object per line with a string input and a target (string, number or boolean, kept as a
 * string). Blank lines are skipped.
 */
export function parseJSONL(text: string, opts: { source?: string; inputKey?: string; targetKey?: string } = {}): TextPair[] {
  const source = opts.source ?? '<jsonl>';
  const ik = opts.inputKey ?? 'input';
  const tk = opts.targetKey ?? 'target';
  checkNotEmpty(text, source);
  const out: TextPair[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i].trim();
    if (l.length === 0) continue;
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch (e) {
      throw new DataError(`${source}: line ${i + 1} is not valid JSON (${(e as Error).message})`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new DataError(`${source}: line ${i + 1} must be a JSON object with keys '${ik}' and '${tk}'`);
    const o = v as Record<string, unknown>;
    if (typeof o[ik] !== 'string') throw new DataError(`${source}: line ${i + 1} has no string '${ik}'`);
    const t = o[tk];
    if (!(typeof t === 'string' || typeof t === 'number' || typeof t === 'boolean')) throw new DataError(`${source}: line ${i + 1} has no '${tk}' (a string, number or boolean)`);
    out.push({ input: o[ik] as string, target: String(t) });
  }
  return out;
}


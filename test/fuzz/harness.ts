/**
 * The shape every fuzz harness has, the property they all check, and the mutators they share.
 *
 * A harness feeds one loader of untrusted input. Its input is always bytes (so a counterexample can
 * be saved to a file and replayed as it was found); structure-aware harnesses build those bytes from
 * a mutated structure (a JSON config, a Keras model.json with its shards). The property, the same
 * for every harness: the loader returns, or throws an Error of one of the classes the harness
 * allows — never another exception (a crash), never a call over 5 s (a hang), never more than 1 GB
 * of memory growth. Hangs and out-of-memory aborts that a property cannot observe from inside the
 * call are caught by the runner's watchdog (run.ts).
 */
import fc from 'fast-check';

/** Allowed error classes, by constructor (an `instanceof` check, so subclasses count). */
export type ErrorClass = abstract new (...args: never[]) => Error;

export interface Harness {
  /** Unique name, e.g. 'safetensors/decode'. */
  name: string;
  /** Folder under corpus/ and regressions/ (several harnesses may share one format). */
  format: string;
  /** Inputs: mutations of the seed corpus. */
  arbitrary: () => fc.Arbitrary<Uint8Array>;
  /** Run the loader on one input; return normally or throw. */
  run: (bytes: Uint8Array) => void;
  /** Error classes the loader documents for bad input. */
  allowed: readonly ErrorClass[];
}

/** A call slower than this is a hang. */
export const HANG_MS = 5_000;
/** Memory growth (RSS or array buffers) over this during one call or one run is a failure. */
export const MEMORY_BYTES = 1024 ** 3;

/** Why an input failed the property. */
export class FuzzFailure extends Error {
  constructor(
    readonly kind: 'crash' | 'hang' | 'memory',
    message: string,
    readonly original?: unknown,
  ) {
    super(message);
    this.name = 'FuzzFailure';
  }
}

function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.constructor?.name ?? e.name}: ${e.message.slice(0, 300)}`;
  return `a thrown non-Error ${typeof e}: ${String(e).slice(0, 100)}`;
}

/**
 * Run `h` on `bytes` and check the property; throw FuzzFailure when it does not hold. Memory is
 * compared with the figures before the call, so a leak that builds up over many calls is seen by
 * the runner's watchdog instead.
 */
export function checkInput(h: Harness, bytes: Uint8Array): void {
  const before = process.memoryUsage();
  const t0 = performance.now();
  let thrown: unknown;
  let threw = false;
  try {
    h.run(bytes);
  } catch (e) {
    threw = true;
    thrown = e;
  }
  const ms = performance.now() - t0;
  const after = process.memoryUsage();
  if (ms > HANG_MS) throw new FuzzFailure('hang', `${h.name}: one call took ${(ms / 1000).toFixed(1)} s (limit ${HANG_MS / 1000} s) on ${bytes.length} input bytes`);
  const grew = Math.max(after.rss - before.rss, after.arrayBuffers - before.arrayBuffers);
  if (grew > MEMORY_BYTES) throw new FuzzFailure('memory', `${h.name}: memory grew by ${(grew / 1024 ** 2).toFixed(0)} MB in one call (limit ${MEMORY_BYTES / 1024 ** 2} MB)`);
  if (threw && !h.allowed.some((c) => thrown instanceof c)) {
    const allowed = h.allowed.map((c) => c.name).join(', ');
    const frame = thrown instanceof Error ? (thrown.stack ?? '').split('\n').find((l) => l.includes('/src/'))?.trim() : undefined;
    throw new FuzzFailure('crash', `${h.name}: threw ${describeError(thrown)} (allowed: ${allowed})${frame ? ` ${frame}` : ''}`, thrown);
  }
}

// ---- byte-level mutation ----------------------------------------------------------------------------

type ByteEdit =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'delete'; at: number; len: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'dup'; at: number; len: number; to: number }
  | { op: 'splice'; at: number; other: number; from: number; len: number }
  | { op: 'u32'; at: number; value: number }
  | { op: 'u64'; at: number; value: bigint };

// values that length and offset fields are most often broken by
const INTERESTING_U32 = [0, 1, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const INTERESTING_U64 = [0n, 1n, 8n, 0xffffffffn, 0x100000000n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 64n - 1n];

const edit: fc.Arbitrary<ByteEdit> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(0, 0x22, 0x2c, 0x5b, 0x5d, 0x7b, 0x7d, 0x3a, 0x0a, 0x80, 0xff), fc.nat(255)) }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 256 }), to: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('splice' as const), at: fc.nat(), other: fc.nat(), from: fc.nat(), len: fc.integer({ min: 1, max: 512 }) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('u32' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(...INTERESTING_U32), fc.nat()) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('u64' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(...INTERESTING_U64), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })) }), weight: 2 },
);

function applyEdit(b: Uint8Array, e: ByteEdit, seeds: readonly Uint8Array[]): Uint8Array {
  const n = b.length;
  const pos = (x: number, extra = 0): number => (n + extra === 0 ? 0 : x % (n + extra));
  switch (e.op) {
    case 'flip': {
      if (n === 0) return b;
      const out = b.slice();
      out[pos(e.at)] ^= 1 << e.bit;
      return out;
    }
    case 'set': {
      if (n === 0) return b;
      const out = b.slice();
      out[pos(e.at)] = e.value;
      return out;
    }
    case 'truncate':
      return b.slice(0, pos(e.at, 1));
    case 'delete': {
      const at = pos(e.at, 1);
      const out = new Uint8Array(n - Math.min(e.len, n - at));
      out.set(b.subarray(0, at));
      out.set(b.subarray(at + e.len), at);
      return out;
    }
    case 'insert': {
      const at = pos(e.at, 1);
      const out = new Uint8Array(n + e.bytes.length);
      out.set(b.subarray(0, at));
      out.set(e.bytes, at);
      out.set(b.subarray(at), at + e.bytes.length);
      return out;
    }
    case 'dup': {
      if (n === 0) return b;
      const from = pos(e.at);
      const chunk = b.slice(from, from + e.len);
      const to = pos(e.to, 1);
      const out = new Uint8Array(n + chunk.length);
      out.set(b.subarray(0, to));
      out.set(chunk, to);
      out.set(b.subarray(to), to + chunk.length);
      return out;
    }
    case 'splice': {
      // a piece of another seed replaces the tail: mixes the structure of two valid inputs
      const other = seeds[e.other % seeds.length];
      if (other.length === 0) return b;
      const from = e.from % other.length;
      const at = pos(e.at, 1);
      const piece = other.subarray(from, from + e.len);
      const out = new Uint8Array(at + piece.length + Math.max(0, n - at - piece.length));
      out.set(b.subarray(0, at));
      out.set(piece, at);
      if (n > at + piece.length) out.set(b.subarray(at + piece.length), at + piece.length);
      return out;
    }
    case 'u32': {
      if (n < 4) return b;
      const out = b.slice();
      new DataView(out.buffer).setUint32(e.at % (n - 3), e.value >>> 0, true);
      return out;
    }
    case 'u64': {
      if (n < 8) return b;
      const out = b.slice();
      new DataView(out.buffer).setBigUint64(e.at % (n - 7), e.value, true);
      return out;
    }
  }
}

/** Apply a list of byte edits (bit flips, truncation, splicing, length fields set to huge values). */
export function mutateBytes(base: Uint8Array, edits: readonly ByteEdit[], seeds: readonly Uint8Array[]): Uint8Array {
  let b = base;
  for (const e of edits) b = applyEdit(b, e, seeds);
  return b;
}

/** Seeds, and seeds with 1–8 byte-level edits (the seeds alone now and then, to check the baseline). */
export function byteMutations(seeds: readonly Uint8Array[], maxEdits = 8): fc.Arbitrary<Uint8Array> {
  if (seeds.length === 0) throw new Error('byteMutations: no seeds');
  return fc
    .tuple(fc.nat(seeds.length - 1), fc.array(edit, { minLength: 0, maxLength: maxEdits }))
    .map(([i, edits]) => mutateBytes(seeds[i], edits, seeds));
}

// ---- structure-aware mutation of JSON -------------------------------------------------------------

/** Values that break configs: wrong types, huge and negative numbers, NaN strings, nesting, prototypes. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null, true, false, 0, -1, -0.5, 0.5, 1, 2, 3, 1e9, -1e9, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e300, -1e300, Number.MAX_SAFE_INTEGER, Number.MIN_VALUE,
    '', 'NaN', 'Infinity', '-Infinity', '1e400', '-1', '0x10', '64', 'true', 'lstm', 'gru', 'rnn', '__proto__', 'constructor',
    [], [1], ['a'], {}, { a: 1 }, { __proto__: null }, [[[]]],
  ),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 12 }),
  fc.jsonValue({ maxDepth: 2 }),
);

type JsonEdit =
  | { op: 'retype'; path: number; value: unknown }
  | { op: 'remove'; path: number }
  | { op: 'add'; path: number; key: string; value: unknown }
  | { op: 'scale'; path: number; factor: number };

const jsonEdit: fc.Arbitrary<JsonEdit> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('retype' as const), path: fc.nat(), value: hostileValue }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constant('remove' as const), path: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('add' as const), path: fc.nat(), key: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'length', 'task', 'arch'), fc.string({ maxLength: 8 })), value: hostileValue }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('scale' as const), path: fc.nat(), factor: fc.constantFrom(-1, 0, 2, 1000, 1e6, 2 ** 31, 0.5, Number.NaN) }), weight: 2 },
);

type Slot = { parent: Record<string, unknown> | unknown[]; key: string | number };

function slots(v: unknown, out: Slot[] = [], skip: (key: string | number, depth: number) => boolean = () => false, depth = 0): Slot[] {
  if (Array.isArray(v)) {
    // long arrays (vocabularies) would drown the config keys; sample their first entries only
    for (let i = 0; i < Math.min(v.length, 8); i++) {
      out.push({ parent: v, key: i });
      slots(v[i], out, skip, depth + 1);
    }
  } else if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) {
      if (skip(k, depth)) continue;
      out.push({ parent: v as Record<string, unknown>, key: k });
      slots((v as Record<string, unknown>)[k], out, skip, depth + 1);
    }
  }
  return out;
}

/**
 * Apply JSON edits to a deep copy of `value`. `protect` names top-level keys edited only rarely
 * (the `task` of a model config: without it, every input would stop at "unknown task").
 */
export function mutateJson(value: unknown, edits: readonly JsonEdit[], protect: readonly string[] = []): unknown {
  const root = { v: structuredClone(value) };
  for (const e of edits) {
    const all = slots(root.v, [], (k, d) => d === 0 && protect.includes(String(k)) && e.path % 16 !== 0);
    if (all.length === 0) {
      if (e.op === 'retype') root.v = e.value;
      continue;
    }
    const s = all[e.path % all.length];
    const p = s.parent as Record<string | number, unknown>;
    if (e.op === 'retype') p[s.key] = structuredClone(e.value);
    else if (e.op === 'remove') {
      if (Array.isArray(p)) p.splice(s.key as number, 1);
      else delete p[s.key];
    } else if (e.op === 'scale') {
      if (typeof p[s.key] === 'number') p[s.key] = (p[s.key] as number) * e.factor;
      else p[s.key] = e.factor;
    } else {
      const target = p[s.key];
      if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
        // defineProperty so that a '__proto__' key becomes an own key, as JSON.parse would make it
        Object.defineProperty(target, e.key, { value: structuredClone(e.value), enumerable: true, writable: true, configurable: true });
      } else p[s.key] = { [e.key]: e.value };
    }
  }
  return root.v;
}

/** A list of JSON edits. */
export function jsonEdits(maxEdits = 4): fc.Arbitrary<JsonEdit[]> {
  return fc.array(jsonEdit, { minLength: 1, maxLength: maxEdits });
}

/** JSON text with keys duplicated (JSON.stringify cannot write a duplicate key): `"k": v` repeated with another value. */
export function duplicateKey(text: string, at: number, value: unknown): string {
  const re = /"((?:[^"\\]|\\.)*)"\s*:/g;
  const hits: RegExpExecArray[] = [];
  for (let m = re.exec(text); m !== null; m = re.exec(text)) hits.push(m);
  if (hits.length === 0) return text;
  const m = hits[at % hits.length];
  return `${text.slice(0, m.index)}"${m[1]}": ${JSON.stringify(value) ?? 'null'}, ${text.slice(m.index)}`;
}

export const utf8 = new TextEncoder();
export const utf8Decode = (b: Uint8Array): string => new TextDecoder().decode(b);

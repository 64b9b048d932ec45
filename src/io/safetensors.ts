/**
 * safetensors model files: encoding, decoding, saving and loading.
 *
 * Format: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON header,
 * then the data section. The header maps each tensor name to
 * `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the
 * start of the data section) and may carry `"__metadata__"`, an object of
 * string -> string. Tensor data is raw little-endian, row-major.
 *
 * What this module promises:
 *
 * - Writing (`encodeSafetensors`, `saveSafetensors`) is deterministic: tensors
 *   are laid out contiguously in name order, and the header is padded with
 *   spaces so the data section starts at an 8-byte aligned file offset. Input
 *   is validated first (dtype vs. typed-array type, data length vs. shape,
 *   metadata values are strings); writing F16/BF16 is not supported and is
 *   rejected. Tensor bytes are copied verbatim, so every bit pattern (NaN
 *   payloads, -0, infinities) round-trips exactly. `saveSafetensors` replaces
 *   the target atomically: it never leaves a half-written file.
 *
 * - Reading (`decodeSafetensors`, `loadSafetensors`) trusts nothing in the
 *   file. Every claim in the header is checked against the real byte count
 *   before anything is allocated from it: the header length, its UTF-8/JSON
 *   well-formedness, every dtype, shape, element count and offset pair, that
 *   each tensor's byte count equals product(shape) x itemsize, and that the
 *   tensors tile the data section exactly (no overlaps, holes or trailing
 *   bytes). Unknown extra fields inside a tensor entry are ignored and
 *   `"__metadata__": null` reads as no metadata, as in the reference
 *   implementation. Optional expectations (`expect`, `allowExtra`) check names and
 *   shapes. Any problem is reported as a `SafetensorsError` whose message says
 *   what was wrong and what was expected, naming the tensor where relevant;
 *   malformed input never produces any other error type, a hang, or an
 *   allocation larger than the input.
 *
 * - The header is strict where JSON.parse is lax: a key that appears twice in
 *   any object of the header (two tensors of one name, two `__metadata__`, a
 *   metadata key or an entry field given twice) is an error naming the key,
 *   since JSON.parse would silently keep the last one and two readers could
 *   disagree on what the file holds. Invalid UTF-8 is an error, never U+FFFD.
 *
 * - Resource limits (io/limits.ts, option `limits`): the header length is
 *   checked against `headerBytes` (or the older `maxHeaderBytes` option, which
 *   wins when given; still a SafetensorsError, as before), the number of
 *   tensors against `tensors` and each tensor's element count against
 *   `tensorElements` (a LimitError naming the tensor), all before any tensor is
 *   allocated. Model-level limits (parameters) are for the model-file layer.
 *
 * - Decoded arrays are always fresh copies: they never alias the input bytes
 *   and are correctly aligned whatever the offset of the data in the file.
 *   F16 and BF16 entries are decoded to a Float32Array (exactly: every half
 *   and bfloat16 value is representable in float32, NaN payloads included);
 *   their `dtype` stays 'F16' / 'BF16' so the caller can tell what was stored.
 *   I64 decodes to BigInt64Array, U8 and BOOL to Uint8Array (BOOL bytes are
 *   returned as stored).
 *
 * - Returned records are plain objects whose own keys are exactly the tensor
 *   (or metadata) names; a name such as "__proto__" is stored as an ordinary
 *   own property, never as a prototype.
 */
import { checkLimit, resolveLimits, type Limits } from './limits.ts';
import { isRecord } from '../util/options.ts';
import { isCount } from '../util/shape.ts';

export type SafeDType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U8'
  | 'BOOL';

/** The typed arrays a tensor's data may live in. */
export type SafeArray =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | BigInt64Array;

/**
 * One tensor. `data` holds product(shape) elements in row-major order; its
 * array type matches `dtype` (F64: Float64Array, F32: Float32Array, I64:
 * BigInt64Array, I32: Int32Array, I16: Int16Array, I8: Int8Array, U8 and
 * BOOL: Uint8Array). Exception, for tensors read from a file only: 'F16' and
 * 'BF16' entries carry their values decoded into a Float32Array.
 */
export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: SafeArray;
}

export interface DecodeOptions {
  /**
   * Tensors the file must contain: either just names, or names with their
   * exact expected shapes.
   */
  expect?: Record<string, number[]> | string[];
  /** With `expect`, tolerate tensors that were not listed (default false). */
  allowExtra?: boolean;
  /**
   * Largest header length accepted, in bytes (default: `limits.headerBytes`, 100 MiB). Kept for
   * callers that set it; when both are given this one wins.
   */
  maxHeaderBytes?: number;
  /** Resource limits (headerBytes, tensors, tensorElements); the defaults of io/limits.ts with these overrides. */
  limits?: Partial<Limits>;
}

export interface DecodedSafetensors {
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** Any problem with a safetensors file, or with tensors given to be written. */
export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

/** Default limit on the header length: 100 MiB (the default `headerBytes` limit). */
export const DEFAULT_MAX_HEADER_BYTES = 100 * 1024 * 1024;

const METADATA_KEY = '__metadata__';

const ITEM_SIZE: Readonly<Record<SafeDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

const DTYPE_LIST = Object.keys(ITEM_SIZE).join(', ');

const TWO_POW_MINUS_24 = 2 ** -24;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(message: string): never {
  throw new SafetensorsError(`safetensors: ${message}`);
}

function isDType(x: unknown): x is SafeDType {
  return typeof x === 'string' && Object.hasOwn(ITEM_SIZE, x);
}

/** data_offsets: [begin, end], two non-negative safe integers. */
function isOffsetPair(x: unknown): x is [number, number] {
  return Array.isArray(x) && x.length === 2 && x.every(isCount);
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'string') return `the string ${truncate(JSON.stringify(x), 60)}`;
  if (typeof x === 'number' || typeof x === 'boolean') return `${typeof x} ${String(x)}`;
  return typeof x;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}...`;
}

/** A tensor name quoted for messages (bounded length, escapes visible). */
function q(name: string): string {
  return truncate(JSON.stringify(name), 120);
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 20).map(q).join(', ');
  return names.length > 20 ? `${shown}, ... (${names.length} in all)` : shown || '(none)';
}

/** Define an own, enumerable data property (safe for names like "__proto__"). */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/**
 * The typed array that holds each dtype's values, for reading and writing alike (F16 and BF16 are
 * read into float32 and cannot be written).
 */
const ARRAY_TYPE: Readonly<Record<SafeDType, { readonly name: string; new (buffer: ArrayBuffer): SafeArray }>> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Float32Array,
  BF16: Float32Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

function arrayMatchesDType(data: unknown, dtype: SafeDType): data is SafeArray {
  return dtype !== 'F16' && dtype !== 'BF16' && data instanceof ARRAY_TYPE[dtype];
}

/** Reverse the bytes of each `size`-byte element in place (LE <-> BE). */
function swapBytes(buf: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= buf.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = buf[a]!;
      buf[a] = buf[b]!;
      buf[b] = t;
    }
  }
}

/**
 * Validate a shape and return it (-0 read as 0) with its element count; `what` prefixes messages.
 * Rejects anything but an array of non-negative safe integers, and counts that
 * would not be exact in a double.
 */
function checkShape(shape: unknown, what: string): { dims: number[]; count: number } {
  if (!Array.isArray(shape)) {
    fail(`${what}: shape must be an array of non-negative integers, got ${describe(shape)}`);
  }
  const dims: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    if (!isCount(d)) {
      fail(
        `${what}: shape must be an array of non-negative integers, ` +
          `but dimension ${i} is ${describe(d)}`,
      );
    }
    dims.push(d === 0 ? 0 : d); // normalise -0
  }
  if (dims.includes(0)) return { dims, count: 0 };
  let count = 1;
  for (const d of dims) {
    if (count > Number.MAX_SAFE_INTEGER / d) {
      fail(
        `${what}: element count of shape ${truncate(JSON.stringify(shape), 200)} ` +
          `overflows (must be at most ${Number.MAX_SAFE_INTEGER})`,
      );
    }
    count *= d;
  }
  return { dims, count };
}

function shapeText(shape: readonly number[]): string {
  return truncate(`[${shape.join(', ')}]`, 200);
}

// ---------------------------------------------------------------------------
// Encoding

interface Planned {
  name: string;
  tensor: SafeTensor;
  begin: number;
  end: number;
}

/**
 * Serialize tensors (and optional string metadata) to safetensors bytes.
 * Tensors are stored in name order, contiguously; the data section starts at
 * an 8-byte aligned offset. Throws SafetensorsError on invalid input.
 */
export function encodeSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  if (!isRecord(tensors)) {
    fail(`tensors must be an object mapping names to tensors, got ${describe(tensors)}`);
  }
  const names = Object.keys(tensors).sort();
  const plan: Planned[] = [];
  let offset = 0;
  for (const name of names) {
    const what = `tensor ${q(name)}`;
    if (name === METADATA_KEY) {
      fail(`${what}: the name ${METADATA_KEY} is reserved for file metadata`);
    }
    const t: unknown = tensors[name];
    if (!isRecord(t)) fail(`${what}: expected {dtype, shape, data}, got ${describe(t)}`);
    const dtype: unknown = t['dtype'];
    if (!isDType(dtype)) {
      fail(`${what}: unknown dtype ${describe(dtype)} (expected one of ${DTYPE_LIST})`);
    }
    if (dtype === 'F16' || dtype === 'BF16') {
      fail(
        `${what}: writing ${dtype} is not supported ` +
          `(store it as F32, or convert the values yourself)`,
      );
    }
    const { dims, count } = checkShape(t['shape'], what);
    const data: unknown = t['data'];
    if (!arrayMatchesDType(data, dtype)) {
      const got =
        typeof data === 'object' && data !== null ? data.constructor?.name ?? 'object' : describe(data);
      fail(`${what}: dtype ${dtype} needs its data in a ${ARRAY_TYPE[dtype].name}, got ${got}`);
    }
    if (data.length !== count) {
      fail(
        `${what}: data has ${data.length} elements but shape ` +
          `${shapeText(dims)} needs ${count}`,
      );
    }
    const begin = offset;
    offset += data.byteLength;
    plan.push({ name, tensor: { dtype, shape: dims, data }, begin, end: offset });
  }

  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isRecord(metadata)) {
      fail(`metadata must be an object of string values, got ${describe(metadata)}`);
    }
    const entries: string[] = [];
    for (const key of Object.keys(metadata)) {
      const v: unknown = metadata[key];
      if (typeof v !== 'string') {
        fail(`metadata ${q(key)}: values must be strings, got ${describe(v)}`);
      }
      entries.push(`${JSON.stringify(key)}:${JSON.stringify(v)}`);
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${entries.join(',')}}`);
  }
  for (const p of plan) {
    const info = {
      dtype: p.tensor.dtype,
      shape: p.tensor.shape.map((d) => d),
      data_offsets: [p.begin, p.end],
    };
    parts.push(`${JSON.stringify(p.name)}:${JSON.stringify(info)}`);
  }
  const headerBytes = new TextEncoder().encode(`{${parts.join(',')}}`);
  // The 8-byte prefix is aligned already, so pad the header to a multiple of 8.
  const padded = headerBytes.length + ((8 - (headerBytes.length % 8)) % 8);
  const dataStart = 8 + padded;
  const out = new Uint8Array(dataStart + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(headerBytes, 8);
  out.fill(0x20, 8 + headerBytes.length, dataStart);
  for (const p of plan) {
    const d = p.tensor.data;
    const dest = out.subarray(dataStart + p.begin, dataStart + p.end);
    dest.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    if (!LITTLE_ENDIAN) swapBytes(dest, ITEM_SIZE[p.tensor.dtype]);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Decoding

interface Entry {
  name: string;
  dtype: SafeDType;
  shape: number[];
  count: number;
  begin: number;
  end: number;
}

function parseEntry(name: string, raw: unknown, dataLen: number): Entry {
  const what = `tensor ${q(name)}`;
  if (!isRecord(raw)) {
    fail(`${what}: header entry must be an object {dtype, shape, data_offsets}, got ${describe(raw)}`);
  }
  const dtype: unknown = raw['dtype'];
  if (!isDType(dtype)) {
    fail(`${what}: unknown dtype ${describe(dtype)} (expected one of ${DTYPE_LIST})`);
  }
  const { dims: shape, count } = checkShape(raw['shape'], what);
  const offs: unknown = raw['data_offsets'];
  if (!isOffsetPair(offs)) {
    fail(
      `${what}: data_offsets must be two non-negative integers [begin, end], ` +
        `got ${truncate(JSON.stringify(offs) ?? String(offs), 200)}`,
    );
  }
  const begin = offs[0] + 0; // + 0 normalises -0
  const end = offs[1] + 0;
  if (begin > end) {
    fail(`${what}: data_offsets [${begin}, ${end}] have begin > end (expected begin <= end)`);
  }
  const itemSize = ITEM_SIZE[dtype];
  if (count > Math.floor(Number.MAX_SAFE_INTEGER / itemSize)) {
    fail(`${what}: byte size of shape ${shapeText(shape)} (${dtype}) overflows`);
  }
  const expectedBytes = count * itemSize;
  if (end - begin !== expectedBytes) {
    fail(
      `${what}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, but shape ` +
        `${shapeText(shape)} of ${dtype} needs ${count} x ${itemSize} = ${expectedBytes} bytes`,
    );
  }
  if (end > dataLen) {
    fail(
      `${what}: data_offsets [${begin}, ${end}] end beyond the data section, ` +
        `which is only ${dataLen} bytes (truncated file?)`,
    );
  }
  return { name, dtype, shape, count, begin, end };
}

/** Check that the entries tile [0, dataLen) exactly. */
function checkCoverage(entries: Entry[], dataLen: number): void {
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < cursor && prev !== undefined) {
      fail(
        `tensors ${q(prev.name)} [${prev.begin}, ${prev.end}) and ${q(e.name)} ` +
          `[${e.begin}, ${e.end}) overlap in the data section (tensors must not share bytes)`,
      );
    }
    if (e.begin > cursor) {
      fail(
        `the data section has a hole: bytes [${cursor}, ${e.begin}) are not covered by any ` +
          `tensor (expected tensor ${q(e.name)} to start at ${cursor}, not ${e.begin})`,
      );
    }
    // Sorted by begin, and begin >= cursor here, so end >= cursor too.
    cursor = e.end;
    prev = e;
  }
  if (cursor !== dataLen) {
    fail(
      `the data section has ${dataLen - cursor} trailing bytes not covered by any tensor ` +
        `(tensors cover [0, ${cursor}), but the data section is ${dataLen} bytes)`,
    );
  }
}

function checkExpectations(
  entries: Map<string, Entry>,
  expect: Record<string, number[]> | string[],
  allowExtra: boolean,
): void {
  const byShape = !Array.isArray(expect);
  if (!Array.isArray(expect) && !isRecord(expect)) {
    throw new TypeError('expect must be an array of names or an object of name -> shape');
  }
  const wanted: string[] = Array.isArray(expect) ? expect.slice() : Object.keys(expect);
  const present = [...entries.keys()];
  for (const name of wanted) {
    const e = entries.get(name);
    if (e === undefined) {
      fail(`missing expected tensor ${q(name)} (the file has: ${listNames(present)})`);
    }
    if (byShape) {
      const want = (expect as Record<string, number[]>)[name];
      if (!Array.isArray(want)) {
        throw new TypeError(`expect[${JSON.stringify(name)}] must be a shape array`);
      }
      const same = want.length === e.shape.length && want.every((d, i) => d === e.shape[i]);
      if (!same) {
        fail(
          `tensor ${q(name)}: shape ${shapeText(e.shape)} does not match the expected ` +
            `shape ${shapeText(want)}`,
        );
      }
    }
  }
  if (!allowExtra) {
    const wantedSet = new Set(wanted);
    for (const name of present) {
      if (!wantedSet.has(name)) {
        fail(
          `unexpected tensor ${q(name)} in the file (expected only: ${listNames(wanted)}; ` +
            `pass allowExtra to ignore extra tensors)`,
        );
      }
    }
  }
}

function readTensor(bytes: Uint8Array, dataStart: number, e: Entry): SafeTensor {
  const size = ITEM_SIZE[e.dtype];
  const start = dataStart + e.begin;
  const byteLen = e.count * size;
  if (e.dtype === 'F16' || e.dtype === 'BF16') {
    const out = new Float32Array(e.count);
    const bits = new Uint32Array(out.buffer);
    const dv = new DataView(bytes.buffer, bytes.byteOffset + start, byteLen);
    if (e.dtype === 'BF16') {
      for (let i = 0; i < e.count; i++) bits[i] = dv.getUint16(2 * i, true) << 16;
    } else {
      for (let i = 0; i < e.count; i++) {
        const h = dv.getUint16(2 * i, true);
        const sign = (h & 0x8000) << 16;
        const exp = (h >> 10) & 0x1f;
        const frac = h & 0x3ff;
        if (exp === 0x1f) {
          bits[i] = sign | 0x7f800000 | (frac << 13); // inf / NaN, payload kept
        } else if (exp !== 0) {
          bits[i] = sign | ((exp + 112) << 23) | (frac << 13); // normal: rebias 15 -> 127
        } else {
          // zero or subnormal: frac * 2^-24, exact in float32
          const mag = frac * TWO_POW_MINUS_24;
          out[i] = sign !== 0 ? -mag : mag;
        }
      }
    }
    return { dtype: e.dtype, shape: e.shape, data: out };
  }
  const copy = new Uint8Array(byteLen);
  copy.set(bytes.subarray(start, start + byteLen));
  if (!LITTLE_ENDIAN) swapBytes(copy, size);
  const data = new ARRAY_TYPE[e.dtype](copy.buffer);
  return { dtype: e.dtype, shape: e.shape, data };
}

interface KeyFrame {
  /** An object (keys are tracked) or an array. */
  obj: boolean;
  /** Keys seen so far; made on the first key, so `[{}, {}, …]` costs no sets. */
  keys: Set<string> | null;
  /** The next string in this object is a key (after `{` or `,`). */
  expectKey: boolean;
  /** The key whose value is being read: names the object a nested frame belongs to. */
  lastKey: string | null;
}

/**
 * The first key that appears twice in one object of a JSON text that JSON.parse has accepted, with
 * where it is, or null. One pass over the text, each key decoded once: linear time. (JSON.parse
 * keeps the last of duplicate keys without a word, which would let one file mean two things.)
 */
function findDuplicateKey(text: string): string | null {
  const stack: KeyFrame[] = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: find its closing quote (the text is valid JSON, so there is one)
      let j = i + 1;
      let escaped = false;
      for (;;) {
        const d = text.charCodeAt(j);
        if (d === 0x5c) {
          escaped = true;
          j += 2;
        } else if (d === 0x22) break;
        else j++;
      }
      const top = stack[stack.length - 1];
      if (top !== undefined && top.obj && top.expectKey) {
        // "a" and "\u0061" are the same key: decode escapes before comparing
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        if (top.keys === null) top.keys = new Set();
        if (top.keys.has(key)) {
          if (stack.length === 1) return key === METADATA_KEY ? `${METADATA_KEY} appears twice` : `tensor name ${q(key)} appears twice`;
          const owner = stack[0]!.lastKey ?? '';
          if (owner === METADATA_KEY && stack.length === 2) return `${METADATA_KEY} key ${q(key)} appears twice`;
          return `key ${q(key)} appears twice in the entry of ${owner === METADATA_KEY ? METADATA_KEY : `tensor ${q(owner)}`}`;
        }
        top.keys.add(key);
        top.expectKey = false;
        top.lastKey = key;
      }
      i = j;
    } else if (c === 0x7b) {
      stack.push({ obj: true, keys: null, expectKey: true, lastKey: null });
    } else if (c === 0x5b) {
      stack.push({ obj: false, keys: null, expectKey: false, lastKey: null });
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
    } else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top !== undefined && top.obj) top.expectKey = true;
    }
  }
  return null;
}

/**
 * Parse and fully validate safetensors bytes. Throws SafetensorsError on any
 * malformation or unmet expectation (see the module comment). Returned arrays
 * are copies that do not alias `bytes`.
 */
export function decodeSafetensors(bytes: Uint8Array, opts: DecodeOptions = {}): DecodedSafetensors {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError('decodeSafetensors: bytes must be a Uint8Array');
  }
  const limits = resolveLimits(opts.limits);
  const maxHeaderBytes = opts.maxHeaderBytes ?? limits.headerBytes;
  if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 0) {
    throw new RangeError('decodeSafetensors: maxHeaderBytes must be a non-negative integer');
  }

  if (bytes.length < 8) {
    fail(
      `file is ${bytes.length} bytes, shorter than the 8-byte header-length prefix ` +
        `(truncated or not a safetensors file)`,
    );
  }
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(Number.MAX_SAFE_INTEGER)) {
    fail(
      `header length ${n64} does not fit in a safe integer ` +
        `(at most ${Number.MAX_SAFE_INTEGER}); not a safetensors file?`,
    );
  }
  const headerLen = Number(n64);
  if (headerLen > maxHeaderBytes) {
    fail(
      `header length ${headerLen} bytes exceeds the limit of ${maxHeaderBytes} bytes ` +
        `(maxHeaderBytes, the headerBytes limit); refusing to parse it`,
    );
  }
  if (headerLen > bytes.length - 8) {
    fail(
      `truncated file: header length is ${headerLen} bytes but only ` +
        `${bytes.length - 8} bytes follow the 8-byte prefix`,
    );
  }

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(8, 8 + headerLen),
    );
  } catch {
    fail(`header (${headerLen} bytes) is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    fail(`header is not valid JSON: ${truncate(why, 200)} (expected a JSON object)`);
  }
  if (!isRecord(header)) {
    fail(`header must be a JSON object mapping tensor names to entries, got ${describe(header)}`);
  }
  const dup = findDuplicateKey(text);
  if (dup !== null) fail(`header: ${dup} (every key of a JSON object in the header must be unique)`);

  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;

  const metadata: Record<string, string> = {};
  // An explicit null means "no metadata", as in the reference implementation.
  if (Object.hasOwn(header, METADATA_KEY) && header[METADATA_KEY] !== null) {
    const meta: unknown = header[METADATA_KEY];
    if (!isRecord(meta)) {
      fail(`${METADATA_KEY} must be an object of string values, got ${describe(meta)}`);
    }
    for (const key of Object.keys(meta)) {
      const v: unknown = meta[key];
      if (typeof v !== 'string') {
        fail(`${METADATA_KEY} entry ${q(key)} must be a string, got ${describe(v)}`);
      }
      setOwn(metadata, key, v);
    }
  }

  const names = Object.keys(header);
  const numTensors = names.length - (Object.hasOwn(header, METADATA_KEY) ? 1 : 0);
  checkLimit(limits, 'tensors', numTensors, 'safetensors: tensors in the header');
  const entries = new Map<string, Entry>();
  for (const name of names) {
    if (name === METADATA_KEY) continue;
    const e = parseEntry(name, header[name], dataLen);
    checkLimit(limits, 'tensorElements', e.count, `safetensors: tensor ${q(name)} of shape ${shapeText(e.shape)}: elements`);
    entries.set(name, e);
  }
  checkCoverage([...entries.values()], dataLen);
  if (opts.expect !== undefined) {
    checkExpectations(entries, opts.expect, opts.allowExtra ?? false);
  }

  const tensors: Record<string, SafeTensor> = {};
  for (const e of entries.values()) setOwn(tensors, e.name, readTensor(bytes, dataStart, e));
  return { tensors, metadata };
}

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { SafetensorsError, decodeSafetensors, encodeSafetensors, type DecodeOptions, type SafeTensor } from '../src/io/safetensors.ts';
import { loadSafetensors, saveSafetensors } from '../src/io/files.ts';
import { writeFileAtomic, writeFileAtomicAsync } from '../src/io/atomic.ts';
import { LimitError } from '../src/io/limits.ts';

// ---------------------------------------------------------------------------
// helpers

/** The raw bytes behind a typed array. */
function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Float32Array from raw IEEE-754 bit patterns. */
function f32Bits(bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

/** Float64Array from raw bit patterns. */
function f64Bits(bits: bigint[]): Float64Array {
  return new Float64Array(new BigUint64Array(bits).buffer);
}

/**
 * Hand-build a file: 8-byte LE length, header text (JSON.stringify'd when an
 * object), then the data bytes. `headerLen` overrides the length prefix.
 */
function rawFile(
  header: string | Uint8Array | object,
  data: Uint8Array | number = 0,
  headerLen?: bigint,
): Uint8Array {
  const h =
    header instanceof Uint8Array
      ? header
      : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

function rejects(bytes: Uint8Array, re: RegExp, opts?: DecodeOptions): void {
  assert.throws(
    () => decodeSafetensors(bytes, opts),
    (err: unknown) => {
      assert.ok(err instanceof SafetensorsError, `expected SafetensorsError, got ${String(err)}`);
      assert.equal(err.name, 'SafetensorsError');
      assert.match(err.message, re);
      return true;
    },
  );
}

function encodeRejects(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SafetensorsError, `expected SafetensorsError, got ${String(err)}`);
    assert.match(err.message, re);
    return true;
  });
}

/** Header JSON parsed back out of encoded bytes. */
function headerOf(bytes: Uint8Array): { len: number; json: Record<string, any>; text: string } {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + len));
  return { len, json: JSON.parse(text), text };
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sampleTensors(): Record<string, SafeTensor> {
  return {
    'w.f32': {
      dtype: 'F32',
      shape: [2, 4],
      // 1.5, -0, +Inf, -Inf, quiet NaN, NaN with payload, signalling NaN, -NaN
      data: f32Bits([
        0x3fc00000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fc12345, 0x7f800001,
        0xffc00000,
      ]),
    },
    'w.f64': {
      dtype: 'F64',
      shape: [3],
      data: f64Bits([0x8000000000000000n, 0x7ff8000000000abcn, 0x7ff0000000000000n]),
    },
    'scalar.f64': { dtype: 'F64', shape: [], data: new Float64Array([Math.PI]) },
    'scalar.f32': { dtype: 'F32', shape: [], data: new Float32Array([-2.5]) },
    'i32': { dtype: 'I32', shape: [1, 3], data: new Int32Array([-1, 2147483647, -2147483648]) },
    'i64': {
      dtype: 'I64',
      shape: [2],
      data: new BigInt64Array([-9223372036854775808n, 9223372036854775807n]),
    },
    'i16': { dtype: 'I16', shape: [2], data: new Int16Array([-32768, 32767]) },
    'i8': { dtype: 'I8', shape: [3], data: new Int8Array([-128, 0, 127]) },
    'u8': { dtype: 'U8', shape: [2, 2], data: new Uint8Array([0, 1, 254, 255]) },
    'mask': { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    'empty.f32': { dtype: 'F32', shape: [0, 5], data: new Float32Array(0) },
    'empty.i64': { dtype: 'I64', shape: [3, 0], data: new BigInt64Array(0) },
    'empty.u8': { dtype: 'U8', shape: [0], data: new Uint8Array(0) },
  };
}

function assertSameTensors(
  got: Record<string, SafeTensor>,
  want: Record<string, SafeTensor>,
): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const name of Object.keys(want)) {
    const g = got[name]!;
    const w = want[name]!;
    assert.equal(g.dtype, w.dtype, name);
    assert.deepEqual(g.shape, w.shape, name);
    assert.equal(g.data.constructor, w.data.constructor, name);
    assert.equal(g.data.length, w.data.length, name);
    assert.ok(bytesOf(g.data).equals(bytesOf(w.data)), `bytes of ${name} differ`);
  }
}

/** A small valid file with a hole-free, overlap-free two-tensor layout. */
function twoTensorFile(): Uint8Array {
  return encodeSafetensors(
    {
      a: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
      b: { dtype: 'I32', shape: [2, 1], data: new Int32Array([3, 4]) },
    },
    { format: 'pt' },
  );
}

// ---------------------------------------------------------------------------

describe('round trip', () => {
  test('all writable dtypes, scalars, zero-size tensors and special floats are bit-exact', () => {
    const tensors = sampleTensors();
    const bytes = encodeSafetensors(tensors);
    const { tensors: back, metadata } = decodeSafetensors(bytes);
    assertSameTensors(back, tensors);
    assert.deepEqual(metadata, {});
    // re-encoding the decoded tensors reproduces the file byte for byte
    assert.ok(Buffer.from(encodeSafetensors(back)).equals(Buffer.from(bytes)));
  });

  test('metadata round-trips', () => {
    const meta = { format: 'pt', note: 'ünïcode ✓ "quoted"\nline', empty: '' };
    const bytes = encodeSafetensors(sampleTensors(), meta);
    const { metadata, tensors } = decodeSafetensors(bytes);
    assert.deepEqual(metadata, meta);
    assertSameTensors(tensors, sampleTensors());
  });

  test('an empty tensor set (with and without metadata) round-trips', () => {
    assert.deepEqual(decodeSafetensors(encodeSafetensors({})), { tensors: {}, metadata: {} });
    assert.deepEqual(decodeSafetensors(encodeSafetensors({}, { a: 'b' })), {
      tensors: {},
      metadata: { a: 'b' },
    });
  });

  test('names such as __proto__ are ordinary own keys', () => {
    const t: Record<string, SafeTensor> = JSON.parse('{"__proto__": null, "constructor": null}');
    Object.defineProperty(t, '__proto__', {
      value: { dtype: 'U8', shape: [1], data: new Uint8Array([7]) },
      enumerable: true,
    });
    t['constructor'] = { dtype: 'U8', shape: [1], data: new Uint8Array([9]) };
    const { tensors } = decodeSafetensors(encodeSafetensors(t));
    assert.ok(Object.hasOwn(tensors, '__proto__'));
    assert.equal(Object.getPrototypeOf(tensors), Object.prototype);
    assert.deepEqual([...tensors['__proto__']!.data], [7]);
    assert.deepEqual([...tensors['constructor']!.data], [9]);
  });

  test('tensors are laid out contiguously in name order', () => {
    const bytes = encodeSafetensors({
      c: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
      a: { dtype: 'F64', shape: [1], data: new Float64Array([1]) },
      b: { dtype: 'I16', shape: [2], data: new Int16Array([1, 2]) },
    });
    const { json } = headerOf(bytes);
    assert.deepEqual(json['a'].data_offsets, [0, 8]);
    assert.deepEqual(json['b'].data_offsets, [8, 12]);
    assert.deepEqual(json['c'].data_offsets, [12, 15]);
    assert.deepEqual(
      Object.keys(json),
      ['a', 'b', 'c'],
    );
  });

  test('the data section starts at an 8-byte aligned offset, header padded with spaces', () => {
    for (let len = 1; len <= 17; len++) {
      const name = 'x'.repeat(len);
      const bytes = encodeSafetensors({ [name]: { dtype: 'F64', shape: [1], data: new Float64Array([2]) } });
      const { len: n, text } = headerOf(bytes);
      assert.equal((8 + n) % 8, 0, `name length ${len}`);
      assert.equal(bytes.length, 8 + n + 8);
      assert.match(text, /^\{.*\} *$/s);
      assert.ok(text.length - text.trimEnd().length < 8, 'at most 7 padding spaces');
    }
  });

  test('F64 data decodes correctly from an unaligned input and does not alias it', () => {
    const bytes = encodeSafetensors({ x: { dtype: 'F64', shape: [2], data: new Float64Array([1.25, -7]) } });
    const backing = new Uint8Array(bytes.length + 3);
    backing.set(bytes, 3);
    const view = backing.subarray(3); // data now sits at an odd address
    const { tensors } = decodeSafetensors(view);
    assert.deepEqual([...tensors['x']!.data], [1.25, -7]);
    backing.fill(0);
    assert.deepEqual([...tensors['x']!.data], [1.25, -7]);
    assert.notEqual(tensors['x']!.data.buffer, backing.buffer);
  });

  test('hand-built F16 file decodes to the right floats', () => {
    const halves = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555, 0x0000];
    const want = [1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, -0, Infinity, -Infinity, NaN, 0.333251953125, 0];
    const data = new Uint8Array(halves.length * 2);
    halves.forEach((h, i) => new DataView(data.buffer).setUint16(2 * i, h, true));
    const file = rawFile({ h: { dtype: 'F16', shape: [3, 4], data_offsets: [0, data.length] } }, data);
    const t = decodeSafetensors(file).tensors['h']!;
    assert.equal(t.dtype, 'F16');
    assert.deepEqual(t.shape, [3, 4]);
    assert.ok(t.data instanceof Float32Array);
    assert.deepEqual([...t.data], want); // deepEqual distinguishes -0 and matches NaN
    assert.ok(Object.is(t.data[6], -0));
    // NaN keeps its payload (0x7e00 -> quiet NaN 0x7fc00000)
    assert.equal(new Uint32Array(t.data.buffer)[9], 0x7fc00000);
  });

  test('hand-built BF16 file decodes to the right floats', () => {
    const raw = [0x3f80, 0xc040, 0x7f80, 0xff80, 0x7fc0, 0x0000, 0x8000, 0x4049, 0x0001];
    const want = [1, -3, Infinity, -Infinity, NaN, 0, -0, 3.140625, 2 ** -133];
    const data = new Uint8Array(raw.length * 2);
    raw.forEach((h, i) => new DataView(data.buffer).setUint16(2 * i, h, true));
    const file = rawFile(
      { __metadata__: { k: 'v' }, b: { dtype: 'BF16', shape: [9], data_offsets: [0, data.length] } },
      data,
    );
    const { tensors, metadata } = decodeSafetensors(file);
    const t = tensors['b']!;
    assert.equal(t.dtype, 'BF16');
    assert.ok(t.data instanceof Float32Array);
    assert.deepEqual([...t.data], want);
    assert.deepEqual(metadata, { k: 'v' });
  });

  test('accepts unpadded headers, any key order, extra entry fields, null metadata', () => {
    const data = new Uint8Array([1, 0, 0, 0, 9]);
    const file = rawFile(
      {
        z: { dtype: 'U8', shape: [1], data_offsets: [4, 5] },
        a: { shape: [], data_offsets: [0, 4], dtype: 'I32', extra_field: 'ignored' },
        __metadata__: null,
      },
      data,
    );
    const { tensors, metadata } = decodeSafetensors(file);
    assert.deepEqual([...tensors['a']!.data], [1]);
    assert.deepEqual([...tensors['z']!.data], [9]);
    assert.deepEqual(metadata, {});
  });
});

describe('files', () => {
  test('save/load round trip', () => {
    const dir = mkdtempSync(join(tmpdir(), 'recur-st-'));
    try {
      const p = join(dir, 'model.safetensors');
      saveSafetensors(p, sampleTensors(), { epoch: '3' });
      const { tensors, metadata } = loadSafetensors(p);
      assertSameTensors(tensors, sampleTensors());
      assert.deepEqual(metadata, { epoch: '3' });
      assert.deepEqual(readdirSync(dir), ['model.safetensors']);
      rejects(readFileSync(p), /unexpected tensor/, { expect: ['i8'] });
      assert.throws(() => loadSafetensors(p, { expect: ['nope'], allowExtra: true }), SafetensorsError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('atomic write replaces an existing file and leaves no temp files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'recur-atomic-'));
    try {
      const p = join(dir, 'out.bin');
      writeFileSync(p, 'old contents that are longer than the new ones');
      writeFileAtomic(p, new Uint8Array([1, 2, 3]));
      assert.deepEqual([...readFileSync(p)], [1, 2, 3]);
      writeFileAtomic(p, 'héllo');
      assert.equal(readFileSync(p, 'utf8'), 'héllo');
      writeFileAtomic(p, new Uint8Array(0));
      assert.equal(readFileSync(p).length, 0);
      assert.deepEqual(readdirSync(dir), ['out.bin']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('failed atomic write cleans up its temp file and rethrows', () => {
    const dir = mkdtempSync(join(tmpdir(), 'recur-atomic-'));
    try {
      const target = join(dir, 'taken');
      mkdirSync(target); // a non-empty directory cannot be replaced by a file
      writeFileSync(join(target, 'keep'), 'x');
      assert.throws(() => writeFileAtomic(target, 'data'), (e: unknown) => e instanceof Error && 'code' in e);
      assert.deepEqual(readdirSync(dir), ['taken']);
      assert.deepEqual(readdirSync(target), ['keep']);
      assert.throws(() => writeFileAtomic(join(dir, 'missing', 'f'), 'data'), /ENOENT/);
      assert.deepEqual(readdirSync(dir), ['taken']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('async atomic write', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'recur-atomic-'));
    try {
      const p = join(dir, 'a.txt');
      writeFileSync(p, 'old');
      await writeFileAtomicAsync(p, 'new');
      assert.equal(readFileSync(p, 'utf8'), 'new');
      mkdirSync(join(dir, 'd'));
      writeFileSync(join(dir, 'd', 'k'), '');
      await assert.rejects(writeFileAtomicAsync(join(dir, 'd'), 'x'));
      assert.deepEqual(readdirSync(dir).sort(), ['a.txt', 'd']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('decode rejects', () => {
  test('a file shorter than 8 bytes', () => {
    rejects(new Uint8Array(0), /0 bytes, shorter than the 8-byte/);
    rejects(new Uint8Array(7), /7 bytes, shorter than the 8-byte/);
  });

  test('a header length beyond maxHeaderBytes (hostile)', () => {
    rejects(rawFile('{}', 0, 2n ** 40n), /header length 1099511627776 bytes exceeds the limit of 104857600/);
    rejects(rawFile('{}    ', 0), /header length 6 bytes exceeds the limit of 4 bytes/, { maxHeaderBytes: 4 });
  });

  test('a header length that is not a safe integer', () => {
    rejects(rawFile('{}', 0, 2n ** 63n), /header length 9223372036854775808 does not fit in a safe integer/);
    rejects(rawFile('{}', 0, 2n ** 64n - 1n), /does not fit in a safe integer/);
  });

  test('a header length larger than the file', () => {
    rejects(rawFile('{}', 0, 3n), /truncated file: header length is 3 bytes but only 2 bytes follow/);
    const ok = twoTensorFile();
    rejects(ok.subarray(0, 20), /truncated file: header length is \d+ bytes but only 12 bytes follow/);
  });

  test('a truncated data section', () => {
    const ok = twoTensorFile();
    rejects(
      ok.subarray(0, ok.length - 1),
      /tensor "b": data_offsets \[8, 16\] end beyond the data section, which is only 15 bytes \(truncated/,
    );
  });

  test('a header that is not UTF-8', () => {
    rejects(rawFile(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid UTF-8/);
    const bad = rawFile('{"a\u00e9":1}');
    bad[11] = 0xc3; // keep lead byte
    bad[12] = 0x28; // invalid continuation
    rejects(bad, /not valid UTF-8/);
  });

  test('a header that is not JSON', () => {
    rejects(rawFile('{"a": '), /header is not valid JSON.*expected a JSON object/);
    rejects(rawFile(''), /header is not valid JSON/);
    rejects(rawFile('\ufeff{}'), /header is not valid JSON/);
    rejects(rawFile('['.repeat(200000)), /header is not valid JSON/);
  });

  test('a header that is not an object', () => {
    rejects(rawFile('[]'), /header must be a JSON object.*got an array/);
    rejects(rawFile('null'), /header must be a JSON object.*got null/);
    rejects(rawFile('"x"'), /header must be a JSON object.*got the string "x"/);
    rejects(rawFile({ a: 5 }), /tensor "a": header entry must be an object/);
  });

  test('an unknown dtype', () => {
    rejects(
      rawFile({ w: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, 1),
      /tensor "w": unknown dtype the string "F8_E4M3" \(expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL\)/,
    );
    rejects(rawFile({ w: { shape: [1], data_offsets: [0, 1] } }, 1), /tensor "w": unknown dtype undefined/);
    rejects(rawFile({ w: { dtype: 'toString', shape: [1], data_offsets: [0, 1] } }, 1), /unknown dtype/);
  });

  test('a bad shape', () => {
    const mk = (shape: unknown) => rawFile({ w: { dtype: 'U8', shape, data_offsets: [0, 1] } }, 1);
    rejects(mk([-1]), /tensor "w": shape must be an array of non-negative integers, but dimension 0 is number -1/);
    rejects(mk([1, 1.5]), /tensor "w": shape .* dimension 1 is number 1.5/);
    rejects(mk(['1']), /tensor "w": shape .* dimension 0 is the string "1"/);
    rejects(mk(1), /tensor "w": shape must be an array of non-negative integers, got number 1/);
    rejects(mk(null), /tensor "w": shape must be an array.*got null/);
    rejects(mk([2 ** 53]), /tensor "w": shape .* dimension 0 is number 9007199254740992/);
  });

  test('an element count overflow', () => {
    const mk = (shape: number[], dtype = 'U8') =>
      rawFile({ w: { dtype, shape, data_offsets: [0, 1] } }, 1);
    rejects(mk([2 ** 30, 2 ** 30, 2 ** 30]), /tensor "w": element count of shape .* overflows/);
    rejects(mk([2 ** 50], 'F64'), /tensor "w": byte size of shape \[1125899906842624\] \(F64\) overflows/);
  });

  test('bad data_offsets', () => {
    const mk = (offs: unknown) => rawFile({ w: { dtype: 'U8', shape: [1], data_offsets: offs } }, 1);
    const re = /tensor "w": data_offsets must be two non-negative integers \[begin, end\]/;
    rejects(mk([0]), re);
    rejects(mk([0, 1, 2]), re);
    rejects(mk([-1, 0]), re);
    rejects(mk([0, 0.5]), re);
    rejects(mk('0,1'), re);
    rejects(mk(undefined), re);
    rejects(mk([1, 0]), /tensor "w": data_offsets \[1, 0\] have begin > end/);
  });

  test('a byte count that does not match the shape', () => {
    rejects(
      rawFile({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, 12),
      /tensor "w": data_offsets \[0, 12\] span 12 bytes, but shape \[2, 2\] of F32 needs 4 x 4 = 16 bytes/,
    );
  });

  test('overlapping tensors', () => {
    rejects(
      rawFile(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        },
        12,
      ),
      /tensors "a" \[0, 8\) and "b" \[4, 12\) overlap/,
    );
    rejects(
      rawFile(
        {
          a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
          b: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
        },
        4,
      ),
      /overlap/,
    );
    // a zero-size tensor strictly inside another one
    rejects(
      rawFile(
        {
          a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
          z: { dtype: 'U8', shape: [0], data_offsets: [2, 2] },
        },
        4,
      ),
      /tensors "a" \[0, 4\) and "z" \[2, 2\) overlap/,
    );
  });

  test('a hole in the data section', () => {
    rejects(
      rawFile(
        {
          a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
          b: { dtype: 'U8', shape: [4], data_offsets: [8, 12] },
        },
        12,
      ),
      /hole: bytes \[4, 8\) are not covered by any tensor \(expected tensor "b" to start at 4, not 8\)/,
    );
    rejects(
      rawFile({ b: { dtype: 'U8', shape: [1], data_offsets: [3, 4] } }, 4),
      /hole: bytes \[0, 3\)/,
    );
  });

  test('trailing bytes after the last tensor', () => {
    rejects(
      rawFile({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } }, 6),
      /2 trailing bytes not covered by any tensor \(tensors cover \[0, 4\), but the data section is 6 bytes\)/,
    );
    rejects(rawFile({}, 1), /1 trailing bytes/);
    const ok = twoTensorFile();
    const longer = new Uint8Array(ok.length + 8);
    longer.set(ok);
    rejects(longer, /8 trailing bytes/);
  });

  test('bad metadata', () => {
    rejects(rawFile({ __metadata__: { a: 1 } }), /__metadata__ entry "a" must be a string, got number 1/);
    rejects(rawFile({ __metadata__: { a: null } }), /__metadata__ entry "a" must be a string, got null/);
    rejects(rawFile({ __metadata__: ['a'] }), /__metadata__ must be an object of string values, got an array/);
    rejects(rawFile({ __metadata__: 'x' }), /__metadata__ must be an object of string values/);
    rejects(rawFile({ __metadata__: 5 }), /__metadata__ must be an object of string values, got number 5/);
  });

  test('duplicate keys anywhere in the header (JSON.parse would keep the last one silently)', () => {
    const a = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
    const a2 = '{"dtype":"F32","shape":[1],"data_offsets":[4,8]}';
    // two tensors of one name: the second would replace the first
    rejects(rawFile(`{"w":${a},"w":${a}}`, 4), /header: tensor name "w" appears twice/);
    rejects(rawFile(`{"w":${a},"v":${a2},"w":${a2}}`, 8), /tensor name "w" appears twice/);
    // the same name spelled with an escape is the same key
    rejects(rawFile(`{"w":${a},"\\u0077":${a}}`, 4), /tensor name "w" appears twice/);
    // two __metadata__ objects, a metadata key twice, an entry field twice
    rejects(rawFile(`{"__metadata__":{"a":"1"},"__metadata__":{"a":"2"},"w":${a}}`, 4), /header: __metadata__ appears twice/);
    rejects(rawFile(`{"__metadata__":{"recur.config":"{}","recur.config":"{}"},"w":${a}}`, 4), /__metadata__ key "recur\.config" appears twice/);
    rejects(rawFile(`{"w":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}`, 4), /key "dtype" appears twice in the entry of tensor "w"/);
    // equal keys in different objects are fine
    const ok = decodeSafetensors(rawFile(`{"__metadata__":{"w":"x"},"w":${a},"v":${a2}}`, 8));
    assert.deepEqual(Object.keys(ok.tensors).sort(), ['v', 'w']);
    assert.equal(ok.metadata['w'], 'x');
  });

  test('the duplicate-key scan stays linear on large headers', () => {
    // 100,000 one-element tensors: the whole decode must take well under a few seconds
    const n = 100_000;
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(`"t${i}":{"dtype":"U8","shape":[1],"data_offsets":[${i},${i + 1}]}`);
    const file = rawFile(`{${parts.join(',')}}`, n);
    const t0 = performance.now();
    assert.equal(Object.keys(decodeSafetensors(file).tensors).length, n);
    assert.ok(performance.now() - t0 < 5000);
    parts.push(`"t7":{"dtype":"U8","shape":[0],"data_offsets":[${n},${n}]}`);
    rejects(rawFile(`{${parts.join(',')}}`, n), /tensor name "t7" appears twice/);
  });

  test('limits: tensors per file, elements per tensor, header bytes', () => {
    const file = encodeSafetensors({
      a: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) },
      b: { dtype: 'U8', shape: [4], data: new Uint8Array(4) },
    }, { format: 'pt' });
    const limitError = (key: string, re: RegExp) => (e: unknown): boolean => {
      assert.ok(e instanceof LimitError, `expected a LimitError, got ${String(e)}`);
      assert.equal(e.key, key);
      assert.match(e.message, re);
      return true;
    };
    assert.throws(() => decodeSafetensors(file, { limits: { tensors: 1 } }), limitError('tensors', /tensors in the header: 2 is over the limit of 1/));
    assert.throws(() => decodeSafetensors(file, { limits: { tensorElements: 5 } }), limitError('tensorElements', /tensor "a" of shape \[2, 3\]: elements: 6 is over the limit of 5/));
    assert.doesNotThrow(() => decodeSafetensors(file, { limits: { tensors: 2, tensorElements: 6 } }));
    // the header limit: limits.headerBytes, or maxHeaderBytes (which wins when given)
    const h = headerOf(file).len;
    rejects(file, new RegExp(`header length ${h} bytes exceeds the limit of ${h - 1} bytes`), { limits: { headerBytes: h - 1 } });
    assert.doesNotThrow(() => decodeSafetensors(file, { limits: { headerBytes: h - 1 }, maxHeaderBytes: h }));
    assert.throws(() => decodeSafetensors(file, { limits: { nope: 1 } as never }), /unknown limit 'nope'/);
  });

  describe('expectations', () => {
    const file = twoTensorFile();

    test('pass when met', () => {
      assert.doesNotThrow(() => decodeSafetensors(file, { expect: ['a', 'b'] }));
      assert.doesNotThrow(() => decodeSafetensors(file, { expect: { a: [2], b: [2, 1] } }));
      assert.doesNotThrow(() => decodeSafetensors(file, { expect: { b: [2, 1] }, allowExtra: true }));
      assert.doesNotThrow(() => decodeSafetensors(file, { expect: [], allowExtra: true }));
    });

    test('a missing expected name', () => {
      rejects(file, /missing expected tensor "c" \(the file has: "a", "b"\)/, { expect: ['a', 'b', 'c'] });
      rejects(file, /missing expected tensor "c"/, { expect: { c: [1] }, allowExtra: true });
    });

    test('an unexpected name', () => {
      rejects(file, /unexpected tensor "b" in the file \(expected only: "a"; pass allowExtra/, { expect: ['a'] });
      rejects(file, /unexpected tensor "a"/, { expect: { b: [2, 1] } });
    });

    test('a shape that differs from the expected one', () => {
      rejects(file, /tensor "b": shape \[2, 1\] does not match the expected shape \[1, 2\]/, {
        expect: { a: [2], b: [1, 2] },
      });
      rejects(file, /tensor "a": shape \[2\] does not match the expected shape \[2, 1\]/, {
        expect: { a: [2, 1], b: [2, 1] },
      });
      rejects(file, /tensor "a": shape \[2\] does not match the expected shape \[\]/, {
        expect: { a: [] },
        allowExtra: true,
      });
    });
  });
});

describe('encode rejects', () => {
  test('data length that does not match the shape', () => {
    encodeRejects(
      () => encodeSafetensors({ w: { dtype: 'F32', shape: [2, 3], data: new Float32Array(5) } }),
      /tensor "w": data has 5 elements but shape \[2, 3\] needs 6/,
    );
    encodeRejects(
      () => encodeSafetensors({ s: { dtype: 'F32', shape: [], data: new Float32Array(0) } }),
      /tensor "s": data has 0 elements but shape \[\] needs 1/,
    );
  });

  test('a typed array that does not match the dtype', () => {
    encodeRejects(
      () => encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float64Array(2) } }),
      /tensor "w": dtype F32 needs its data in a Float32Array, got Float64Array/,
    );
    encodeRejects(
      () => encodeSafetensors({ w: { dtype: 'I64', shape: [2], data: new Int32Array(2) } }),
      /dtype I64 needs its data in a BigInt64Array, got Int32Array/,
    );
    encodeRejects(
      () => encodeSafetensors({ w: { dtype: 'BOOL', shape: [1], data: [1] as never } }),
      /dtype BOOL needs its data in a Uint8Array, got Array/,
    );
  });

  test('F16/BF16, unknown dtypes, bad shapes, reserved names and bad metadata', () => {
    encodeRejects(
      () => encodeSafetensors({ h: { dtype: 'F16', shape: [1], data: new Float32Array(1) } }),
      /tensor "h": writing F16 is not supported/,
    );
    encodeRejects(
      () => encodeSafetensors({ h: { dtype: 'BF16', shape: [1], data: new Float32Array(1) } }),
      /writing BF16 is not supported/,
    );
    encodeRejects(
      () => encodeSafetensors({ h: { dtype: 'U32' as never, shape: [1], data: new Uint8Array(1) } }),
      /tensor "h": unknown dtype/,
    );
    encodeRejects(
      () => encodeSafetensors({ h: { dtype: 'U8', shape: [-1], data: new Uint8Array(1) } }),
      /tensor "h": shape must be an array of non-negative integers/,
    );
    encodeRejects(
      () => encodeSafetensors({ __metadata__: { dtype: 'U8', shape: [1], data: new Uint8Array(1) } }),
      /reserved/,
    );
    encodeRejects(
      () => encodeSafetensors({}, { a: 1 as never }),
      /metadata "a": values must be strings, got number 1/,
    );
  });
});

describe('fuzz', () => {
  test('200 seeded corruptions/truncations either decode or throw SafetensorsError', { timeout: 30_000 }, () => {
    const valid = encodeSafetensors(sampleTensors(), { format: 'pt', step: '12' });
    const headerEnd = 8 + headerOf(valid).len;
    const rand = rng(0x5eed);
    let ok = 0;
    let rejected = 0;
    for (let i = 0; i < 200; i++) {
      let bytes: Uint8Array;
      const kind = rand();
      if (kind < 0.2) {
        bytes = valid.slice(0, Math.floor(rand() * valid.length));
      } else {
        bytes = valid.slice();
        // mostly hit the prefix and header, where corruptions matter
        const pos =
          rand() < 0.85 ? Math.floor(rand() * headerEnd) : Math.floor(rand() * bytes.length);
        let v = Math.floor(rand() * 256);
        if (v === bytes[pos]) v ^= 0xff;
        bytes[pos] = v;
        if (kind > 0.9) bytes = bytes.slice(0, bytes.length - 1 - Math.floor(rand() * 16));
      }
      try {
        const { tensors } = decodeSafetensors(bytes);
        for (const t of Object.values(tensors)) assert.ok(t.data.byteLength <= bytes.length * 2);
        ok++;
      } catch (err) {
        assert.ok(
          err instanceof SafetensorsError,
          `case ${i}: expected SafetensorsError, got ${err instanceof Error ? err.stack : String(err)}`,
        );
        rejected++;
      }
    }
    assert.equal(ok + rejected, 200);
    assert.ok(rejected > 100, `only ${rejected} of 200 corruptions were rejected`);
  });
});

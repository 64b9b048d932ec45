// src/util/base64.ts: the same bytes as Node's own base64, on Node's Buffer and on the loops that
// browsers use; strings that are not padded base64 give null.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromBase64, toBase64 } from '../src/util/base64.ts';
import { Rng } from '../src/index.ts';

function withoutBuffer<T>(fn: () => T): T {
  const g = globalThis as { Buffer?: unknown };
  const saved = g.Buffer;
  g.Buffer = undefined;
  try {
    return fn();
  } finally {
    g.Buffer = saved;
  }
}

for (const path of ['Buffer', 'loops'] as const) {
  test(`base64 (${path}): agrees with Node's encoding both ways, every tail length`, () => {
    const run = path === 'loops' ? withoutBuffer : <T>(fn: () => T) => fn();
    const rng = new Rng(5);
    for (const n of [0, 1, 2, 3, 4, 5, 6, 7, 1024, 1027]) {
      const bytes = Uint8Array.from({ length: n }, () => rng.int(256));
      const text = run(() => toBase64(bytes));
      assert.equal(text, Buffer.from(bytes).toString('base64'), `${n} bytes`);
      const back = run(() => fromBase64(text))!;
      assert.deepEqual(Array.from(back), Array.from(bytes), `${n} bytes back`);
      assert.equal(back.byteOffset, 0);
    }
    // a view into a larger buffer encodes its own bytes only
    const big = Uint8Array.from({ length: 16 }, (_, i) => i);
    assert.equal(run(() => toBase64(big.subarray(3, 8))), Buffer.from([3, 4, 5, 6, 7]).toString('base64'));
    for (const bad of ['A', 'AB=', 'A===', 'AB C', 'AB-_', 'ab=c', '====', 'éèàç']) assert.equal(run(() => fromBase64(bad)), null, JSON.stringify(bad));
  });
}

/**
 * src/train/host-reads.ts: computations that yield their host reads, driven synchronously and
 * asynchronously to the same results; `both` answers two computations' reads together.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { tensor } from '../src/index.ts';
import { answerSync, both, runAsync, runSync, sumSquares, values, type HostRead, type Reading } from '../src/train/host-reads.ts';

function* twoReads(): Reading<number> {
  const a = (yield* values(tensor([1, 2, 3], [3])))[2];
  const [s] = yield* sumSquares([tensor([3, 4], [2])]);
  return a + s; // 3 + 25
}

function* oneRead(): Reading<string> {
  return `n=${(yield* values(tensor([7], [1])))[0]}`;
}

test('runSync and runAsync give the same results', async () => {
  assert.equal(runSync(twoReads()), 28);
  assert.equal(await runAsync(twoReads()), 28);
});

test('both: the reads of two computations go out together, as many requests as the longer needs', async () => {
  const seen: HostRead[] = [];
  const g = both(twoReads(), oneRead());
  let r = g.next();
  while (!r.done) {
    seen.push(r.value);
    r = g.next(answerSync(r.value));
  }
  assert.deepEqual(r.value, [28, 'n=7']);
  assert.deepEqual(seen.map((q) => (q.kind === 'all' ? q.reads.map((x) => x.kind) : q.kind)), [['values', 'values'], ['sumSquares']]);
  assert.deepEqual(await runAsync(both(oneRead(), twoReads())), ['n=7', 28]);
});

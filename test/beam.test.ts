/**
 * Greedy decoding and beam search on hand-made step functions: beam width 1 equals greedy; a
 * wide beam finds the known best sequence where greedy falls into a trap; exhaustive search
 * agrees with a wide exact beam on random tables; batching, length normalisation, maxLength and
 * the select bookkeeping.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Rng } from '../src/tensor/rng.ts';
import { beamSearch, greedyDecode, normalizedScore, type DecoderSpec } from '../src/infer/beam.ts';

const STOP = 0;
const START = 99;

/**
 * A decoder whose state is the prefix itself; `table(prefix)` gives the next-token probabilities.
 * The state is an array of prefixes (one per row); select gathers them.
 */
function specFor(table: (prefix: number[], sample: number) => number[], o: { batchSize?: number; V: number; maxLength: number; calls?: { rows: number[] } }): DecoderSpec<number[][]> {
  const B = o.batchSize ?? 1;
  return {
    batchSize: B,
    vocabSize: o.V,
    startToken: START,
    stopToken: STOP,
    maxLength: o.maxLength,
    initialState: Array.from({ length: B }, () => []),
    step(tokens, state, sampleOf) {
      assert.equal(tokens.length, state.length, 'one token per state row');
      o.calls?.rows.push(tokens.length);
      const next = state.map((p, i) => (tokens[i] === START ? [] : [...p, tokens[i]]));
      const lp: number[] = [];
      next.forEach((p, i) => lp.push(...table(p, sampleOf[i]).map(Math.log)));
      return { logProbs: lp, state: next };
    },
    select(state, rows) {
      return Array.from(rows, (r) => state[r]);
    },
  };
}

/**
 * The trap: greedy takes token 1 (p 0.6) but every continuation after it is flat; token 2
 * (p 0.4) is followed by the stop token with p 0.9. Best sequence: [2] (0.36 vs ≤ 0.2).
 */
function trap(prefix: number[]): number[] {
  if (prefix.length === 0) return [0, 0.6, 0.4];
  if (prefix[0] === 1) return [1 / 3, 1 / 3, 1 / 3];
  return [0.9, 0.05, 0.05];
}

/** A random but fixed next-token table (deterministic in the prefix). */
function randomTable(V: number, seed: number): (prefix: number[], sample: number) => number[] {
  return (prefix, sample) => {
    let h = seed * 7919 + sample * 104729;
    for (const t of prefix) h = (h * 31 + t + 1) >>> 0;
    const rr = new Rng(h);
    const w = Array.from({ length: V }, () => 0.05 + rr.random());
    w[STOP] *= 0.6; // stopping is a little less likely than a typical token
    const z = w.reduce((a, b) => a + b, 0);
    return w.map((x) => x / z);
  };
}

/** Best finished sequence by exhaustive enumeration (score = log p / len^α). */
function exhaustive(table: (p: number[], s: number) => number[], V: number, maxLength: number, alpha: number, sample = 0): { tokens: number[]; score: number } {
  let best = { tokens: [] as number[], score: -Infinity };
  const walk = (prefix: number[], lp: number): void => {
    const probs = table(prefix, sample);
    const lStop = lp + Math.log(probs[STOP]);
    const s = normalizedScore(lStop, prefix.length + 1, alpha);
    if (s > best.score) best = { tokens: prefix.slice(), score: s };
    if (prefix.length + 1 >= maxLength) return;
    for (let v = 1; v < V; v++) walk([...prefix, v], lp + Math.log(probs[v]));
  };
  walk([], 0);
  return best;
}

describe('greedy and beam search', () => {
  test('greedy falls into the trap; a beam of 2 finds the best sequence', () => {
    const g = greedyDecode(specFor(trap, { V: 3, maxLength: 4 }));
    assert.equal(g[0].tokens[0], 1);
    const b = beamSearch(specFor(trap, { V: 3, maxLength: 4 }), { beamWidth: 2, lengthPenalty: 0 });
    assert.deepEqual(b[0][0].tokens, [2]);
    assert.ok(Math.abs(b[0][0].logProb - Math.log(0.36)) < 1e-12);
    assert.equal(b[0][0].finished, true);
  });

  test('beam width 1 equals greedy (tokens and log-probabilities), for any length penalty', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const table = randomTable(5, seed);
      const g = greedyDecode(specFor(table, { V: 5, maxLength: 7, batchSize: 3 }));
      for (const alpha of [0, 0.6, 1]) {
        const b = beamSearch(specFor(table, { V: 5, maxLength: 7, batchSize: 3 }), { beamWidth: 1, lengthPenalty: alpha });
        for (let s = 0; s < 3; s++) {
          assert.deepEqual(b[s][0].tokens, g[s].tokens, `seed ${seed} sample ${s} α ${alpha}`);
          assert.ok(Math.abs(b[s][0].logProb - g[s].logProb) < 1e-12);
          assert.equal(b[s][0].finished, g[s].finished);
        }
      }
    }
  });

  test('a wide exact beam (earlyStopping false) finds the exhaustive optimum', () => {
    const V = 4, maxLength = 4;
    for (let seed = 1; seed <= 5; seed++) {
      const table = randomTable(V, seed);
      for (const alpha of [0, 1]) {
        const best = exhaustive(table, V, maxLength, alpha);
        const b = beamSearch(specFor(table, { V, maxLength }), { beamWidth: 64, lengthPenalty: alpha, earlyStopping: false });
        assert.deepEqual(b[0][0].tokens, best.tokens, `seed ${seed} α ${alpha}`);
        assert.ok(Math.abs(b[0][0].score - best.score) < 1e-12);
      }
    }
  });

  test('batched samples decode independently, as if alone', () => {
    const table = randomTable(5, 42);
    const together = beamSearch(specFor(table, { V: 5, maxLength: 6, batchSize: 4 }), { beamWidth: 3, numReturn: 3 });
    for (let s = 0; s < 4; s++) {
      const alone = beamSearch(specFor((p) => table(p, s), { V: 5, maxLength: 6 }), { beamWidth: 3, numReturn: 3 });
      assert.deepEqual(together[s].map((h) => h.tokens), alone[0].map((h) => h.tokens));
      assert.ok(together[s].length <= 3);
      const fin = together[s].filter((h) => h.finished);
      for (let i = 1; i < fin.length; i++) assert.ok(fin[i - 1].score >= fin[i].score, 'finished ranked best first');
      assert.ok(together[s].findIndex((h) => !h.finished) === -1 || together[s].slice(together[s].findIndex((h) => !h.finished)).every((h) => !h.finished), 'finished before unfinished');
    }
  });

  test('live rows shrink as samples finish; maxLength cuts unfinished hypotheses', () => {
    const calls = { rows: [] as number[] };
    // sample 0 stops at once; sample 1 never stops
    const table = (p: number[], s: number): number[] => (s === 0 ? [0.9, 0.05, 0.05] : [0, 0.5, 0.5]);
    const b = beamSearch(specFor(table, { V: 3, maxLength: 3, batchSize: 2, calls }), { beamWidth: 2 });
    // step 1: one row per sample; step 2: two beams each (sample 0 has 1 of 2 finished);
    // step 3: sample 0 has finished 3 hypotheses and is gone, only sample 1's two beams remain
    assert.deepEqual(calls.rows, [2, 4, 2]);
    assert.equal(b[0][0].finished, true);
    assert.deepEqual(b[0][0].tokens, []);
    assert.equal(b[1][0].finished, false);
    assert.equal(b[1][0].tokens.length, 3);
    const g = greedyDecode(specFor(table, { V: 3, maxLength: 3, batchSize: 2 }));
    assert.deepEqual(g.map((h) => h.finished), [true, false]);
    assert.deepEqual(g[1].tokens, [1, 1, 1]);
  });

  test('length penalty changes the ranking as documented', () => {
    // [] then stop: p 0.3; [1] then stop: 0.7·0.4 = 0.28 — raw sum prefers the short one,
    // the per-token mean prefers the long one (log 0.28 / 2 > log 0.3 / 1).
    const table = (p: number[]): number[] => (p.length === 0 ? [0.3, 0.7, 0] : [0.4, 0.3, 0.3]);
    const raw = beamSearch(specFor(table, { V: 3, maxLength: 3 }), { beamWidth: 2, lengthPenalty: 0, earlyStopping: false });
    assert.deepEqual(raw[0][0].tokens, []);
    const mean = beamSearch(specFor(table, { V: 3, maxLength: 3 }), { beamWidth: 2, lengthPenalty: 1, earlyStopping: false });
    assert.deepEqual(mean[0][0].tokens, [1]);
    assert.ok(Math.abs(mean[0][0].score - Math.log(0.28) / 2) < 1e-12);
  });

  test('argument errors name the option', () => {
    const s = specFor(trap, { V: 3, maxLength: 4 });
    assert.throws(() => beamSearch(s, { beamWidth: 0 }), /beamWidth/);
    assert.throws(() => beamSearch(s, { beamWidth: 2, lengthPenalty: -1 }), /lengthPenalty/);
    assert.throws(() => greedyDecode({ ...s, maxLength: 0 }), /'maxLength'/);
    assert.throws(() => greedyDecode({ ...s, stopToken: 3 }), /stopToken 3/);
    assert.throws(() => greedyDecode({ ...s, step: () => ({ logProbs: [0], state: [] }) }), /3 values/);
  });
});

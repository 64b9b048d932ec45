/**
 * Max pooling over time on plain arrays — the loops of the Backend's maxOverTime and
 * maxOverTimeBackward (their contract is in interface.ts), shared by the js backend (on its own
 * arrays) and the wasm backend (on its heap, at each storage's first index). O(T·B·F), one pass:
 * small beside the recurrent layer whose output it pools, so no SIMD kernel of its own.
 */
import { checkTimeLengths } from './interface.ts';

type Floats = Float32Array | Float64Array;

/** out[oi + b·F + f] = max over t < len_b of x[xi + (t·B + b)·F + f]; the first maximum wins, NaN wins. */
export function maxOverTimeLoop(T: number, B: number, F: number, x: Floats, xi: number, lengths: Int32Array | null, out: Floats, oi: number): void {
  checkTimeLengths('maxOverTime', T, B, lengths);
  for (let b = 0; b < B; b++) {
    const len = lengths === null ? T : lengths[b];
    for (let f = 0; f < F; f++) {
      const i = b * F + f;
      let best = x[xi + i];
      for (let t = 1; t < len; t++) {
        const v = x[xi + t * B * F + i];
        if (v > best || (v !== v && best === best)) best = v;
      }
      out[oi + i] = best;
    }
  }
}

/** dx[di + (t·B + b)·F + f] += dy[gi + b·F + f] at the first t < len_b where x equals out (NaN matching NaN). */
export function maxOverTimeBackwardLoop(
  T: number, B: number, F: number, x: Floats, xi: number, lengths: Int32Array | null, out: Floats, oi: number, dy: Floats, gi: number, dx: Floats, di: number,
): void {
  checkTimeLengths('maxOverTimeBackward', T, B, lengths);
  for (let b = 0; b < B; b++) {
    const len = lengths === null ? T : lengths[b];
    for (let f = 0; f < F; f++) {
      const i = b * F + f;
      const y = out[oi + i];
      for (let t = 0; t < len; t++) {
        const v = x[xi + t * B * F + i];
        if (v === y || (v !== v && y !== y)) {
          dx[di + t * B * F + i] += dy[gi + i];
          break;
        }
      }
    }
  }
}

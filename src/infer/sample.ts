/**
 * Choosing tokens from logits, and a generic autoregressive loop.
 *
 * `sample(logits, {temperature, topK, topP, rng})` draws one token id:
 *   1. temperature 0 (or topK 1) is greedy: the largest logit (ties: the lowest id);
 *   2. otherwise p = softmax(logits / temperature), computed in float64 from the largest logit;
 *   3. top-k keeps the k most probable tokens (ties broken by the lower id);
 *   4. top-p (nucleus, Holtzman et al.) keeps the smallest set of the most probable tokens whose
 *      probability adds up to at least p — always at least one token;
 *   5. one uniform draw from the seeded `Rng` picks a token from the renormalised rest.
 * The filters compose in that order (as in Hugging Face's `generate`). Everything is seeded: the
 * same rng state gives the same token.
 *
 * `generate({step, prime, maxLength, ...})` feeds the prime through `step` (or `prefill`), then
 * samples one token at a time, feeding each back, until `maxLength` tokens or the stop token.
 * Models plug in by writing `step(token, state) → {logits, state}`; it runs under `noGrad`.
 */
import { Rng, globalRng } from '../tensor/rng.ts';
import { Tensor } from '../tensor/tensor.ts';
import { noGrad } from '../autograd/tape.ts';
import { checkOptions } from '../util/options.ts';

export interface SampleOptions {
  /** Softmax temperature (default 1); 0 is greedy. */
  temperature?: number;
  /** Keep only the k most probable tokens. */
  topK?: number;
  /** Keep the smallest set of most probable tokens with total probability ≥ p, in (0, 1]. */
  topP?: number;
  /** The randomness (default: the global generator). */
  rng?: Rng;
}

const SAMPLE_KEYS = ['temperature', 'topK', 'topP', 'rng'];

interface Checked {
  temperature: number;
  topK: number | undefined;
  topP: number | undefined;
  rng: Rng;
}

function checkSampleOptions(who: string, o: SampleOptions, extraKeys: readonly string[] = []): Checked {
  if (o === null || typeof o !== 'object') throw new TypeError(`${who}: options must be an object`);
  checkOptions(who, o, [...extraKeys, ...SAMPLE_KEYS]);
  const temperature = o.temperature ?? 1;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) throw new RangeError(`${who}: 'temperature' must be a finite number ≥ 0, got ${String(o.temperature)}`);
  if (o.topK !== undefined && !(Number.isSafeInteger(o.topK) && o.topK >= 1)) throw new RangeError(`${who}: 'topK' must be a positive integer, got ${String(o.topK)}`);
  if (o.topP !== undefined && !(typeof o.topP === 'number' && o.topP > 0 && o.topP <= 1)) throw new RangeError(`${who}: 'topP' must be a number in (0, 1], got ${String(o.topP)}`);
  const rng = o.rng ?? globalRng;
  if (!(rng instanceof Rng)) throw new TypeError(`${who}: 'rng' must be an Rng (e.g. new Rng(seed))`);
  return { temperature, topK: o.topK, topP: o.topP, rng };
}

function toArray(who: string, logits: ArrayLike<number> | Tensor): ArrayLike<number> {
  const a = logits instanceof Tensor ? logits.toArray() : logits;
  if (!a || typeof a.length !== 'number' || a.length === 0) throw new RangeError(`${who}: logits must be a non-empty array of numbers`);
  return a;
}

/** The id of the largest logit (ties: the lowest id). NaN logits are never chosen unless all are NaN. */
export function greedy(logits: ArrayLike<number> | Tensor): number {
  const a = toArray('greedy', logits);
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best] || Number.isNaN(a[best])) best = i;
  return best;
}

/**
 * The distribution `sample` draws from: softmax(logits / temperature) with the top-k and top-p
 * filters applied and renormalised (filtered tokens get 0). Temperature 0 gives a one-hot at the
 * greedy token.
 */
export function probabilities(logits: ArrayLike<number> | Tensor, opts: Omit<SampleOptions, 'rng'> = {}): Float64Array {
  const who = 'probabilities';
  const a = toArray(who, logits);
  const o = checkSampleOptions(who, opts);
  const V = a.length;
  const p = new Float64Array(V);
  const best = greedy(a);
  if (o.temperature === 0 || o.topK === 1) {
    p[best] = 1;
    return p;
  }
  const max = a[best];
  if (!Number.isFinite(max)) {
    if (max === Infinity) {
      // +∞ logits share all the mass.
      let n = 0;
      for (let i = 0; i < V; i++) if (a[i] === Infinity) n++;
      for (let i = 0; i < V; i++) if (a[i] === Infinity) p[i] = 1 / n;
      return p;
    }
    throw new RangeError(`${who}: logits are all NaN or -Infinity`);
  }
  let total = 0;
  for (let i = 0; i < V; i++) {
    const x = a[i];
    p[i] = Number.isNaN(x) ? 0 : Math.exp((x - max) / o.temperature);
    total += p[i];
  }
  for (let i = 0; i < V; i++) p[i] /= total;
  if (o.topK === undefined && o.topP === undefined) return p;
  // Most probable first; ties by the lower id (a stable order, so the result is reproducible).
  const order = Array.from({ length: V }, (_, i) => i).sort((i, j) => p[j] - p[i] || i - j);
  let keep = V;
  if (o.topK !== undefined) keep = Math.min(keep, o.topK);
  if (o.topP !== undefined) {
    let cum = 0;
    let n = 0;
    while (n < keep) {
      cum += p[order[n]];
      n++;
      if (cum >= o.topP) break;
    }
    keep = Math.max(1, n);
  }
  let kept = 0;
  for (let r = 0; r < keep; r++) kept += p[order[r]];
  const q = new Float64Array(V);
  for (let r = 0; r < keep; r++) q[order[r]] = p[order[r]] / kept;
  return q;
}

/** Draw one token id from logits (see the file comment for the order of the filters). */
export function sample(logits: ArrayLike<number> | Tensor, opts: SampleOptions = {}): number {
  const who = 'sample';
  const o = checkSampleOptions(who, opts);
  const a = toArray(who, logits);
  if (o.temperature === 0 || o.topK === 1) return greedy(a);
  const p = probabilities(a, { temperature: o.temperature, topK: o.topK, topP: o.topP });
  const u = o.rng.random();
  let acc = 0;
  let lastNonZero = -1;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    lastNonZero = i;
    acc += p[i];
    if (u < acc) return i;
  }
  return lastNonZero; // rounding left u just above the total
}

// ---- autoregressive generation ------------------------------------------------------------------------

export interface StepOutput<S> {
  /** Scores over the vocabulary for the next token. */
  logits: ArrayLike<number> | Tensor;
  state: S;
}

export interface GenerateOptions<S> extends SampleOptions {
  /** Feed one token, get the next token's logits and the new state (state is null on the first call). */
  step(token: number, state: S | null): StepOutput<S>;
  /** Optional: run the whole prime at once (e.g. one fused recurrent pass); must equal stepping through it. */
  prefill?(tokens: readonly number[], state: S | null): StepOutput<S>;
  /** Tokens to start from (at least one). */
  prime: ArrayLike<number>;
  /** Tokens to generate at most (not counting the prime). */
  maxLength: number;
  /** Stop after generating this token (it is not included in `tokens`). */
  stopToken?: number;
  /** Starting state (default null). */
  state?: S | null;
}

export interface GenerateResult<S> {
  /** The generated tokens (without the prime and without the stop token). */
  tokens: number[];
  /** True when generation ended at the stop token. */
  stopped: boolean;
  /** The state after the last token fed to the model. */
  state: S | null;
}

export function generate<S>(o: GenerateOptions<S>): GenerateResult<S> {
  const who = 'generate';
  const s = checkSampleOptions(who, o, ['step', 'prefill', 'prime', 'maxLength', 'stopToken', 'state']);
  if (typeof o.step !== 'function') throw new TypeError(`${who}: 'step' must be a function (token, state) => {logits, state}`);
  if (o.prefill !== undefined && typeof o.prefill !== 'function') throw new TypeError(`${who}: 'prefill' must be a function (tokens, state) => {logits, state}`);
  if (!o.prime || typeof o.prime.length !== 'number' || o.prime.length === 0) throw new RangeError(`${who}: 'prime' must hold at least one token`);
  const prime = Array.from(o.prime);
  prime.forEach((t, i) => {
    if (!Number.isInteger(t)) throw new TypeError(`${who}: prime token ${String(t)} at position ${i} is not an integer`);
  });
  if (!(Number.isSafeInteger(o.maxLength) && o.maxLength >= 0)) throw new RangeError(`${who}: 'maxLength' must be a non-negative integer, got ${String(o.maxLength)}`);
  if (o.stopToken !== undefined && !Number.isInteger(o.stopToken)) throw new TypeError(`${who}: 'stopToken' must be an integer, got ${String(o.stopToken)}`);
  return noGrad(() => {
    let state: S | null = o.state ?? null;
    let out: StepOutput<S>;
    if (o.prefill) {
      out = o.prefill(prime, state);
    } else {
      out = o.step(prime[0], state);
      for (let i = 1; i < prime.length; i++) out = o.step(prime[i], out.state);
    }
    state = out.state;
    const tokens: number[] = [];
    let stopped = false;
    for (let n = 0; n < o.maxLength; n++) {
      const next = sample(out.logits, { temperature: s.temperature, topK: s.topK, topP: s.topP, rng: s.rng });
      if (o.stopToken !== undefined && next === o.stopToken) {
        stopped = true;
        break;
      }
      tokens.push(next);
      if (n + 1 === o.maxLength) break; // the last token needs no forward pass
      out = o.step(next, state);
      state = out.state;
    }
    return { tokens, stopped, state };
  });
}

/**
 * The values training needs on the host — the loss, gradient norms, NaN scans — asked for without
 * saying whether the answer comes at once (CPU backends) or later (WebGPU, whose reads resolve on the
 * event loop). Code that needs one is a generator that yields a `HostRead` and receives the answer;
 * `runSync` answers with the synchronous reads, `runAsync` with the asynchronous ones. So the
 * training loop, the guards and the norms are written once and run on every backend:
 *
 *   function* lossAndNorm(loss, params) { const l = (yield* values(loss))[0]; ... }
 *   runSync(lossAndNorm(...))          // js, wasm
 *   await runAsync(lossAndNorm(...))   // any backend
 */
import { asyncReads, type Data, type Storage } from '../backend/interface.ts';
import { getBackend, listBackends, setBackend } from '../backend/registry.ts';
import { replaceStorage, type Tensor } from '../tensor/tensor.ts';
import type { Module } from '../nn/module.ts';

/**
 * One request: a tensor's values, a reduction of each of several tensors to one number, or several
 * requests at once (`both`: answered together, so a GPU backend waits once for all of them).
 */
export type HostRead =
  | { kind: 'values'; t: Tensor }
  | { kind: 'sumSquares' | 'maxAbs' | 'nonFinite'; ts: readonly Tensor[] }
  | { kind: 'all'; reads: readonly HostRead[] };

/** A computation that asks for host values: yields requests, receives their answers. */
export type Reading<R> = Generator<HostRead, R, unknown>;

/** The values of t (a copy). */
export function* values(t: Tensor): Reading<Data> {
  return (yield { kind: 'values', t }) as Data;
}

/** Σ x² of each tensor (accumulated in float64, or its equivalent on the GPU). */
export function* sumSquares(ts: readonly Tensor[]): Reading<number[]> {
  return ts.length === 0 ? [] : ((yield { kind: 'sumSquares', ts }) as number[]);
}

/** max |x| of each tensor (NaN where it holds a NaN). */
export function* maxAbs(ts: readonly Tensor[]): Reading<number[]> {
  return ts.length === 0 ? [] : ((yield { kind: 'maxAbs', ts }) as number[]);
}

/** The index of each tensor's first non-finite element, or −1. */
export function* firstNonFinite(ts: readonly Tensor[]): Reading<number[]> {
  return ts.length === 0 ? [] : ((yield { kind: 'nonFinite', ts }) as number[]);
}

/**
 * Two computations side by side: each request of one is answered together with the other's, so
 * their reads cost one wait instead of two. Returns both results.
 */
export function* both<A, B>(a: Reading<A>, b: Reading<B>): Reading<[A, B]> {
  let ra = a.next(), rb = b.next();
  while (!ra.done || !rb.done) {
    const reads: HostRead[] = [];
    if (!ra.done) reads.push(ra.value);
    if (!rb.done) reads.push(rb.value);
    const answers = (yield { kind: 'all', reads }) as unknown[];
    let k = 0;
    if (!ra.done) ra = a.next(answers[k++]);
    if (!rb.done) rb = b.next(answers[k++]);
  }
  return [ra.value, rb.value];
}

/** The answer to one request with the backends' synchronous reads (throws on an asynchronous backend). */
export function answerSync(r: HostRead): unknown {
  if (r.kind === 'all') return r.reads.map(answerSync);
  if (r.kind === 'values') return r.t.toArray();
  return r.ts.map((t) => {
    const be = t.backend;
    if (r.kind === 'sumSquares') return be.sumSquares(t.size, t.storage, 0);
    if (r.kind === 'maxAbs') return be.maxAbs(t.size, t.storage, 0);
    return be.findNonFinite(t.size, t.storage, 0);
  });
}

/**
 * The answer with the asynchronous reads. All reductions of one request are issued before any is
 * awaited, so a GPU backend runs them in one batch of work rather than one round trip each.
 */
export async function answerAsync(r: HostRead): Promise<unknown> {
  if (r.kind === 'all') return Promise.all(r.reads.map(answerAsync));
  if (r.kind === 'values') return r.t.data();
  return Promise.all(r.ts.map((t) => {
    const rd = asyncReads(t.backend);
    if (r.kind === 'sumSquares') return rd.sumSquares(t.size, t.storage, 0);
    if (r.kind === 'maxAbs') return rd.maxAbs(t.size, t.storage, 0);
    return rd.findNonFinite(t.size, t.storage, 0);
  }));
}

export function runSync<R>(g: Reading<R>): R {
  let r = g.next();
  while (!r.done) r = g.next(answerSync(r.value));
  return r.value;
}

export async function runAsync<R>(g: Reading<R>): Promise<R> {
  let r = g.next();
  while (!r.done) r = g.next(await answerAsync(r.value));
  return r.value;
}

/**
 * Run fn — evaluation, sampling, writing a model file: code that reads a model synchronously — with
 * the module's weights on a CPU backend when they live on one read asynchronously (WebGPU): each
 * parameter is read back once, fn runs on the copies (the wasm backend when it is loaded, else js,
 * made the default meanwhile), and the parameters then point at their GPU storage again, unchanged.
 * On a CPU backend fn just runs. The weights must not change while fn runs: the Trainer uses it
 * between steps, and `withHostWeights` is for a model that is not training.
 */
export function* hostWeights<R>(module: Module, fn: () => R): Reading<R> {
  const params = module.parameters();
  if (!params.some((p) => p.backend.readAsync)) return fn();
  const host = listBackends().includes('wasm') ? getBackend('wasm') : getBackend('js');
  const copies: Storage[] = [];
  for (const p of params) copies.push(host.fromArray(yield* values(p), p.dtype));
  const own = params.map((p) => p.storage);
  const prev = getBackend().name;
  params.forEach((p, i) => replaceStorage(p, copies[i]));
  setBackend(host.name);
  try {
    return fn();
  } finally {
    params.forEach((p, i) => replaceStorage(p, own[i]));
    setBackend(prev);
  }
}

/** hostWeights, driven: fn's result once the weights have been read back. */
export function withHostWeights<R>(module: Module, fn: () => R): Promise<R> {
  return runAsync(hostWeights(module, fn));
}

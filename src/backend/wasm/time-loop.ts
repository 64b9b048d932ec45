/**
 * A recurrent direction's whole time loop (Backend.recurrentForward / recurrentBackward).
 *
 * One call per time step of a fused kernel (assembly/cells.ts *Step*_f32): the recurrent GEMM
 * and the cell together, split by hidden units into one chunk per thread when threaded — one job
 * and one barrier per step, the cell math spread over the threads too, and W_hh packed once per
 * call. float32 with H a multiple of 8 only (each gate block then starts on a packed panel);
 * anything else is declined and runs the generic loop (cell-steps.ts). Results equal the generic
 * loop's bit for bit (same GEMM sums, same cell code).
 *
 * Names: G is the gate count (LayerDims.G, the CellSpec's G), `gateRows` = G·H the rows of W_hh
 * and the width of a step's [B, G·H] gate block; `stepOffsets` (interface.ts) gives a step's
 * element offsets, which become byte addresses here (float32: 4 bytes an element).
 */
import {
  BackendError, type BackwardScratch, type DirectionWeights, type DirectionWorkspace, type DType, type FusedStepKernel, type LayerDims, type Storage,
  stepOffsets,
} from '../interface.ts';
import type { StepRows } from './cell-steps.ts';
import type { WasmContext } from './context.ts';
import { type Block, NR, releaseBlock } from './gemm.ts';
import { JOBS, STEP_KERNELS, STEP_SLOTS, type ThreadPool, WAVE_HEADER, WAVE_ROW } from './threads.ts';

/** Bytes per element of the fused loop's float32 buffers. */
const F32 = 4;

/** How a recurrent direction's steps run: on the pool in `chunks` chunks of `unitsPerChunk` hidden units, or inline. */
interface StepPlan {
  pool: ThreadPool | null;
  unitsPerChunk: number;
  chunks: number;
}

/** Byte addresses (and strides) of one fused forward step's operands; 0 for an operand the cell lacks. */
interface StepForwardOperands extends StepRows {
  /** W_hhᵀ packed for the GEMM (N = G·H). */
  wHhPackedPtr: number;
  /** b_hh, for cells that keep the recurrent products apart (GRU). */
  bHhPtr: number;
  /** [B, G·H] this step's input products (pre-activations in, activated gates out). */
  gxPtr: number;
  /** [B, G·H] this step's recurrent products (GRU). */
  ghPtr: number;
  hPrevPtr: number;
  hNextPtr: number;
  cPrevPtr: number;
  cNextPtr: number;
  /** Row t of the strided output y (rows yStride apart), or 0. */
  yPtr: number;
  yStride: number;
}

/** Byte addresses of one BPTT step's operands; dgNextPtr: the step processed before's dG (0 at the first). */
interface StepBackwardOperands extends StepRows {
  /** W_hh packed for dh += dG·W_hh (K = G·H, N = H). */
  wHhPackedPtr: number;
  dgNextPtr: number;
  /** [B, G·H] the activated gates forward saved. */
  gatesPtr: number;
  ghPtr: number;
  hPrevPtr: number;
  hNextPtr: number;
  cPrevPtr: number;
  cNextPtr: number;
  dhPtr: number;
  dyPtr: number;
  dyStride: number;
  dcPtr: number;
  dgxPtr: number;
  dghPtr: number;
  dcPrevPtr: number;
  dhPrevPtr: number;
}

type StepKernel = (typeof STEP_KERNELS)[number];

/**
 * This backend's fused steps, keyed by the kernel names the cell records (src/cells/) hand down —
 * the backend sits below the cells layer and cannot read the records themselves. Each entry says
 * which workspace buffers the cell uses (checked against what the caller passed) and lays its
 * kernel's arguments out (assembly/cells.ts, after j0, j1, scratch) from the named operands: the
 * one place each kernel's parameter order is written on this side.
 */
const FUSED_STEPS: Record<FusedStepKernel, {
  hasCell: boolean;
  /** Whether the cell keeps gh = h·W_hhᵀ + b_hh apart from gx (GRU). */
  recurrentProducts: boolean;
  forward(a: StepForwardOperands): [StepKernel, number[]];
  backward(a: StepBackwardOperands): [StepKernel, number[]];
}> = {
  rnnTanh: rnnSteps(0),
  rnnRelu: rnnSteps(1),
  lstm: {
    hasCell: true,
    recurrentProducts: false,
    forward: (a) => ['lstmStepFwd_f32', [a.B, a.H, a.t, a.lengthsPtr, a.wHhPackedPtr, a.gxPtr, a.hPrevPtr, a.cPrevPtr, a.cNextPtr, a.hNextPtr, a.yPtr, a.yStride]],
    backward: (a) => ['lstmStepBwd_f32', [a.B, a.H, a.t, a.lengthsPtr, a.wHhPackedPtr, a.dgNextPtr, a.gatesPtr, a.cPrevPtr, a.cNextPtr, a.dhPtr, a.dyPtr, a.dyStride, a.dcPtr, a.dgxPtr, a.dcPrevPtr, a.dhPrevPtr]],
  },
  gru: {
    hasCell: false,
    recurrentProducts: true,
    forward: (a) => ['gruStepFwd_f32', [a.B, a.H, a.t, a.lengthsPtr, a.wHhPackedPtr, a.bHhPtr, a.gxPtr, a.ghPtr, a.hPrevPtr, a.hNextPtr, a.yPtr, a.yStride]],
    backward: (a) => ['gruStepBwd_f32', [a.B, a.H, a.t, a.lengthsPtr, a.wHhPackedPtr, a.dgNextPtr, a.gatesPtr, a.ghPtr, a.hPrevPtr, a.dhPtr, a.dyPtr, a.dyStride, a.dgxPtr, a.dghPtr, a.dhPrevPtr]],
  },
};

/** The vanilla RNN's steps; relu selects the activation inside the kernel (0 tanh, 1 relu). */
function rnnSteps(relu: 0 | 1): (typeof FUSED_STEPS)[FusedStepKernel] {
  return {
    hasCell: false,
    recurrentProducts: false,
    forward: (a) => ['rnnStepFwd_f32', [a.B, a.H, a.t, a.lengthsPtr, relu, a.wHhPackedPtr, a.gxPtr, a.hPrevPtr, a.hNextPtr, a.yPtr, a.yStride]],
    backward: (a) => ['rnnStepBwd_f32', [a.B, a.H, a.t, a.lengthsPtr, relu, a.wHhPackedPtr, a.dgNextPtr, a.hNextPtr, a.dhPtr, a.dyPtr, a.dyStride, a.dgxPtr, a.dhPrevPtr]],
  };
}

/** Byte addresses of the states step t reads (h_{t−1}, c_{t−1}) and writes (h_t, c_t) in the workspace (the c addresses are unused by cells without a cell state). */
function stateAddresses(hsPtr: number, csPtr: number, offsets: { prev: number; next: number }) {
  return {
    hPrevPtr: hsPtr + F32 * offsets.prev, hNextPtr: hsPtr + F32 * offsets.next,
    cPrevPtr: csPtr + F32 * offsets.prev, cNextPtr: csPtr + F32 * offsets.next,
  };
}

/** How the steps of a direction run: the pool (or null) and the chunk width in hidden units; null: not fused here. */
function stepPlan(ctx: WasmContext, dims: LayerDims, dt: DType): StepPlan | null {
  const { T, B, H, G } = dims;
  if (!ctx.fusedSteps || dt !== 'float32' || H % NR !== 0 || T === 0 || B === 0 || H === 0) return null;
  const pool = ctx.pool;
  if (pool === null || B * G * H * H < ctx.threadThreshold) return { pool: null, unitsPerChunk: H, chunks: 1 };
  const unitsPerChunk = Math.ceil(H / pool.size / NR) * NR;
  return { pool, unitsPerChunk, chunks: Math.ceil(H / unitsPerChunk) };
}

/** Run a fused step kernel over all H hidden units with its arguments `args` (as FUSED_STEPS laid them out). */
function runStep(ctx: WasmContext, plan: StepPlan, kernel: StepKernel, H: number, args: readonly number[]): void {
  const pool = plan.pool;
  if (pool === null) {
    ctx.kernels[kernel](0, H, ctx.scratchBase, ...args);
    return;
  }
  const slots = pool.args; // slot layout: threads.ts (STEP)
  slots[0] = JOBS.STEP; slots[1] = STEP_KERNELS.indexOf(kernel); slots[2] = H; slots[3] = ctx.scratchBase; slots[4] = ctx.scratchBytes; slots[14] = plan.unitsPerChunk;
  for (let i = 0; i < args.length; i++) slots[STEP_SLOTS[i]] = args[i];
  pool.run(ctx.kernels, plan.chunks);
}

/** The lengths of a layer's rows in wasm memory (0: none). */
function layerLengths(ctx: WasmContext, dims: LayerDims): number {
  return ctx.lengthsAddress({ B: dims.B, H: dims.H, t: 0, lengths: dims.lengths });
}

/**
 * Byte addresses of a direction's workspace (checked; marked written when forward fills it):
 * hs, cs [T+1, B, H] (cs: LSTM, else 0); gx, gh [T, B, G·H] (gh: GRU, else 0).
 */
function workspaceAddresses(ctx: WasmContext, dims: LayerDims, ws: DirectionWorkspace, dt: DType, write: boolean): { hsPtr: number; csPtr: number; gxPtr: number; ghPtr: number } {
  const { T, B, H, G } = dims;
  const BH = B * H, gateRows = G * H;
  return {
    hsPtr: ctx.block(ws.hs, 0, (T + 1) * BH, dt, 'recurrent hs', write),
    csPtr: ws.cs ? ctx.block(ws.cs, 0, (T + 1) * BH, dt, 'recurrent cs', write) : 0,
    gxPtr: ctx.block(ws.gx, 0, T * B * gateRows, dt, 'recurrent gx', write),
    ghPtr: ws.gh ? ctx.block(ws.gh, 0, T * B * gateRows, dt, 'recurrent gh', write) : 0,
  };
}

/**
 * A direction's steps, prepared: `step(s)` lays out the kernel and arguments of the s-th step in
 * processing order (call it for s in that order: backward keeps its ping-pong buffers in it);
 * `end()` finishes the loop (backward: dh_0 += dG_0 · W_hh), `release()` gives the packed W_hh back.
 * The sequential loop runs the steps as they come; the wavefront (below) writes them into a table
 * for the threads — one description of a step for both.
 */
interface PreparedSteps {
  plan: StepPlan;
  T: number;
  H: number;
  step(s: number): [StepKernel, number[]];
  end(): void;
  release(): void;
}

function forwardSteps(ctx: WasmContext, kernel: FusedStepKernel, dims: LayerDims, wt: DirectionWeights, ws: DirectionWorkspace, y: Storage | null, yCol: number, yStride: number): PreparedSteps | null {
  const cell = FUSED_STEPS[kernel];
  if (!cell) return null; // a cell kind this backend has no fused steps for: the generic loop runs it
  const dt = ctx.own(ws.hs, 'recurrent hs').dtype;
  const plan = stepPlan(ctx, dims, dt);
  if (plan === null) return null;
  const { T, B, H, G } = dims;
  const gateRows = G * H;
  const { hsPtr, csPtr, gxPtr, ghPtr } = workspaceAddresses(ctx, dims, ws, dt, true);
  const yPtr = ctx.strided(y, yCol, yStride, T * B, H, dt, 'recurrent y', true);
  const wHh = ctx.span(wt.wHh, 0, gateRows * H, dt, 'recurrent weight_hh'); // [G·H, H]
  const bHhPtr = wt.bHh && cell.recurrentProducts ? ctx.block(wt.bHh, 0, gateRows, dt, 'recurrent bias_hh', false) : 0;
  if (cell.hasCell !== (csPtr !== 0) || cell.recurrentProducts !== (ghPtr !== 0)) throw new BackendError(`wasm backend: recurrentForward: the workspace does not fit a '${kernel}' layer`);
  const lengthsPtr = layerLengths(ctx, dims);
  const wHhPacked = ctx.packs.packedB(ctx, wHh, 0, H, true, H, gateRows, plan.pool); // W_hhᵀ: K = H, N = G·H
  return {
    plan, T, H,
    step(s) {
      const t = ws.reverse ? T - 1 - s : s;
      const offsets = stepOffsets(dims, ws.reverse, t); // elements
      return cell.forward({
        B, H, t, lengthsPtr, wHhPackedPtr: wHhPacked.ptr, bHhPtr,
        gxPtr: gxPtr + F32 * offsets.gates, ghPtr: ghPtr + F32 * offsets.gates,
        ...stateAddresses(hsPtr, csPtr, offsets),
        yPtr: yPtr === 0 ? 0 : yPtr + F32 * t * B * yStride, yStride,
      });
    },
    end() {},
    release: () => releaseBlock(ctx, wHhPacked),
  };
}

function backwardSteps(ctx: WasmContext, kernel: FusedStepKernel, dims: LayerDims, wt: DirectionWeights, ws: DirectionWorkspace, sc: BackwardScratch, dy: Storage | null, dyCol: number, dyStride: number): PreparedSteps | null {
  const cell = FUSED_STEPS[kernel];
  if (!cell) return null;
  const dt = ctx.own(ws.hs, 'recurrent hs').dtype;
  const plan = stepPlan(ctx, dims, dt);
  if (plan === null) return null;
  const { T, B, H, G } = dims;
  const gateRows = G * H, BH = B * H;
  // gx holds the activated gates forward saved
  const { hsPtr, csPtr, gxPtr: gatesPtr, ghPtr } = workspaceAddresses(ctx, dims, ws, dt, false);
  const dyPtr = ctx.strided(dy, dyCol, dyStride, T * B, H, dt, 'recurrent dy', false);
  const dgxPtr = ctx.block(sc.dgx, 0, T * B * gateRows, dt, 'recurrent dgx', true);
  const dghPtr = ctx.block(sc.dgh, 0, T * B * gateRows, dt, 'recurrent dgh', true);
  // ping-pong [B, H] gradients into h_t / h_{t-1} (and c): swapped after every step
  let dhPtr = ctx.block(sc.dh, 0, BH, dt, 'recurrent dh', true), dhPrevPtr = ctx.block(sc.dhPrev, 0, BH, dt, 'recurrent dhPrev', true);
  let dcPtr = sc.dc ? ctx.block(sc.dc, 0, BH, dt, 'recurrent dc', true) : 0;
  let dcPrevPtr = sc.dcPrev ? ctx.block(sc.dcPrev, 0, BH, dt, 'recurrent dcPrev', true) : 0;
  const wHh = ctx.span(wt.wHh, 0, gateRows * H, dt, 'recurrent weight_hh');
  if (cell.hasCell !== (csPtr !== 0 && dcPtr !== 0 && dcPrevPtr !== 0) || cell.recurrentProducts !== (ghPtr !== 0)) throw new BackendError(`wasm backend: recurrentBackward: the workspace does not fit a '${kernel}' layer`);
  const lengthsPtr = layerLengths(ctx, dims);
  const wHhPacked = ctx.packs.packedB(ctx, wHh, 0, H, false, gateRows, H, plan.pool); // W_hh: K = G·H, N = H
  let dgNextPtr = 0; // the dG of the step processed before (0 at the first)
  return {
    plan, T, H,
    step(i) {
      const s = T - 1 - i; // BPTT walks the processing order backwards
      const t = ws.reverse ? T - 1 - s : s;
      const offsets = stepOffsets(dims, ws.reverse, t); // elements
      const laid = cell.backward({
        B, H, t, lengthsPtr, wHhPackedPtr: wHhPacked.ptr, dgNextPtr,
        gatesPtr: gatesPtr + F32 * offsets.gates, ghPtr: ghPtr + F32 * offsets.gates,
        ...stateAddresses(hsPtr, csPtr, offsets),
        dhPtr, dyPtr: dyPtr === 0 ? 0 : dyPtr + F32 * t * B * dyStride, dyStride, dcPtr,
        dgxPtr: dgxPtr + F32 * offsets.gates, dghPtr: dghPtr + F32 * offsets.gates, dcPrevPtr, dhPrevPtr,
      });
      dgNextPtr = dghPtr + F32 * offsets.gates;
      [dhPtr, dhPrevPtr] = [dhPrevPtr, dhPtr];
      [sc.dh, sc.dhPrev] = [sc.dhPrev, sc.dh];
      if (sc.dc && sc.dcPrev) {
        [dcPtr, dcPrevPtr] = [dcPrevPtr, dcPtr];
        [sc.dc, sc.dcPrev] = [sc.dcPrev, sc.dc];
      }
      return laid;
    },
    end() {
      // the gradient into the initial state: dh_0 += dG_0 · W_hh
      ctx.kernels.sgemm_compute(0, 0, B, 0, H / NR, gateRows, H, 1, dgNextPtr, gateRows, wHhPacked.ptr, 1, dhPtr, H, ctx.scratchBase);
    },
    release: () => releaseBlock(ctx, wHhPacked),
  };
}

/** Run prepared steps one after another (each step split over the pool by the plan). */
function runSteps(ctx: WasmContext, p: PreparedSteps | null): boolean {
  if (p === null) return false;
  try {
    for (let s = 0; s < p.T; s++) {
      const [name, args] = p.step(s);
      runStep(ctx, p.plan, name, p.H, args);
    }
    p.end();
  } finally {
    p.release();
  }
  return true;
}

export function recurrentForward(ctx: WasmContext, kernel: FusedStepKernel, dims: LayerDims, wt: DirectionWeights, ws: DirectionWorkspace, y: Storage | null, yCol: number, yStride: number): boolean {
  return runSteps(ctx, forwardSteps(ctx, kernel, dims, wt, ws, y, yCol, yStride));
}

export function recurrentBackward(ctx: WasmContext, kernel: FusedStepKernel, dims: LayerDims, wt: DirectionWeights, ws: DirectionWorkspace, sc: BackwardScratch, dy: Storage | null, dyCol: number, dyStride: number): boolean {
  return runSteps(ctx, backwardSteps(ctx, kernel, dims, wt, ws, sc, dy, dyCol, dyStride));
}

// ---- pipelining across layers: a stack of unidirectional layers as a wavefront -------------------

/** Steps per WAVE job: the table of a longer sequence is written and run in windows of this many. */
const WAVE_WINDOW = 1024;

/** The GEMM a wavefront layer runs before its step s: C(s)[M, N] (+)= A(s)[M, K] · packed B, then the bias rows. */
interface WaveGemm {
  M: number;
  K: number;
  N: number;
  packed: Block;
  lda: number;
  ldc: number;
  beta: number;
  bias1: number;
  bias2: number;
  a(s: number): number;
  c(s: number): number;
}

/**
 * Rows (chunk·B) a wavefront layer's input GEMM covers at least: it runs once per `chunk` steps, so
 * that at batch 1 it is a GEMM over 16 steps, not a matrix-vector product per step (which reads all
 * of W_ih for one row). The consumer then trails its producer by `chunk` steps.
 */
const WAVE_GEMM_ROWS = 16;
function waveChunk(B: number): number {
  return Math.max(1, Math.ceil(WAVE_GEMM_ROWS / B));
}

/**
 * The share of a layer's input GEMM (its column panels) that the layer feeding it runs, right after
 * producing those rows: half, so that the producer (its own steps + half) and the consumer (half +
 * its own steps) carry equal work. Without the split the consumer carried both products and the
 * L2 training step was 3–7% slower than running the layers one after another; with it, 0.98–1.33×
 * as fast (BENCHMARKS.md, "Pipelining across layers").
 */
const WAVE_SPLIT = 0.5;

/**
 * A wavefront layer waits for the one it depends on spinning 100× longer than a pool job's barrier
 * before it sleeps: the producer is about one step ahead and each layer has a core of its own, and
 * waking from Atomics.wait costs more than the wait itself (L2 forward: the wavefront 1.04–1.14×
 * as fast as layer after layer with the pool's spin, 1.13–1.15× with this).
 */
const WAVE_SPIN = 100;

/** One chunk of a WAVE job: a layer's prepared steps, the chunk whose step s comes first (−1: none), and the GEMM that feeds each step. */
interface WaveLayer {
  steps: PreparedSteps;
  after: number;
  gemm: WaveGemm | null;
}

/**
 * The pool to run a wavefront on, or null to decline. Safe: L ≥ 2 forward-direction layers of one
 * T and B, whose packed operands fit in half the packed-operand cache together (the wave holds them
 * all at once, and a cache making room could otherwise free one in use). Worth it (measured on 2
 * cores, BENCHMARKS.md "Pipelining across layers"):
 * - one thread per layer, no more and no fewer: with more threads than layers the wave would leave
 *   threads idle that the split by hidden units uses, and with fewer a thread runs two layers one
 *   after the other, so the upper one starts only when the lower one has finished;
 * - at least 4 chunks of steps, so that the layers overlap for most of the sequence (a 1-step
 *   streaming call cannot overlap at all: each layer waits for the one below);
 * - at batches under 8, layers whose weights are at most 512 KiB: a small-batch step is a
 *   matrix-vector product bound by reading the weights, and one thread per layer reads all of a
 *   layer's weights every step where the split by hidden units reads half per core (batch 1,
 *   H 128: the wavefront 1.3–1.5× as fast; H 256 and 512 before this rule: 0.93–1.02×).
 */
function wavePool(ctx: WasmContext, kernel: FusedStepKernel, dims: readonly LayerDims[], ws: readonly DirectionWorkspace[]): ThreadPool | null {
  const pool = ctx.pool;
  if (pool === null || !ctx.pipelineLayers || !FUSED_STEPS[kernel] || dims.length !== pool.size || ws.some((w) => w.reverse)) return null;
  const { T, B } = dims[0];
  if (T < 4 * waveChunk(B)) return null;
  let packedBytes = 0, largestLayer = 0;
  for (const [l, d] of dims.entries()) {
    if (d.T !== T || d.B !== B || (l > 0 && d.I !== dims[l - 1].H)) return null;
    const bytes = F32 * d.G * d.H * (d.H + d.I);
    packedBytes += bytes;
    largestLayer = Math.max(largestLayer, bytes);
  }
  if (B < 8 && largestLayer > 2 ** 19) return null;
  return packedBytes <= ctx.packs.limitBytes / 2 ? pool : null;
}

/** Run wavefront chunks on the pool, window by window; each layer's `end()` follows. */
function runWave(ctx: WasmContext, pool: ThreadPool, layers: readonly WaveLayer[]): void {
  const L = layers.length, T = layers[0].steps.T;
  const window = Math.min(T, WAVE_WINDOW);
  const headerSlots = WAVE_HEADER.length;
  const rowsBase = L * headerSlots;
  const progressBase = (rowsBase + L * window * WAVE_ROW) * 8;
  const [table, bytes] = ctx.heap.alloc(progressBase + 4 * L, false);
  try {
    for (let s0 = 0; s0 < T; s0 += window) {
      const n = Math.min(window, T - s0);
      const f64 = ctx.heap.f64, i32 = ctx.heap.i32; // after the alloc: the memory may have grown
      for (const [i, { steps, after, gemm }] of layers.entries()) {
        const h = (table >>> 3) + i * headerSlots;
        const rows = table + 8 * (rowsBase + i * window * WAVE_ROW);
        const header: Record<(typeof WAVE_HEADER)[number], number> = {
          steps: n, H: steps.H, after, rows, chunk: gemm ? waveChunk(gemm.M) : 1, split: gemm ? Math.floor(Math.ceil(gemm.N / NR) * WAVE_SPLIT) : 0,
          M: gemm?.M ?? 0, K: gemm?.K ?? 0, N: gemm?.N ?? 0, panels: gemm ? Math.ceil(gemm.N / NR) : 0, packedB: gemm?.packed.ptr ?? 0,
          lda: gemm?.lda ?? 0, ldc: gemm?.ldc ?? 0, beta: gemm?.beta ?? 0, bias1: gemm?.bias1 ?? 0, bias2: gemm?.bias2 ?? 0,
        };
        WAVE_HEADER.forEach((name, k) => { f64[h + k] = header[name]; });
        for (let s = s0, r = rows >>> 3; s < s0 + n; s++, r += WAVE_ROW) {
          const [name, args] = steps.step(s);
          f64.fill(0, r, r + WAVE_ROW);
          f64[r] = STEP_KERNELS.indexOf(name);
          f64.set(args, r + 1);
          if (gemm) {
            f64[r + WAVE_ROW - 2] = gemm.a(s);
            f64[r + WAVE_ROW - 1] = gemm.c(s);
          }
        }
        i32[(progressBase + table) / 4 + i] = 0;
      }
      const a = pool.args; // slot layout: threads.ts (WAVE)
      a[0] = JOBS.WAVE; a[1] = table; a[2] = L; a[3] = ctx.scratchBase; a[4] = ctx.scratchBytes; a[5] = table + progressBase;
      a[6] = pool.canBlock ? 1 : 0; a[7] = pool.spin * WAVE_SPIN; a[8] = headerSlots; a[9] = WAVE_ROW;
      pool.run(ctx.kernels, L);
    }
    for (const l of layers) l.steps.end();
  } finally {
    ctx.heap.release(table, bytes);
  }
}

/** Prepare every layer's steps (null: some layer is not fused here) and release them all afterwards, whatever happens. */
function withPrepared(prepare: () => (PreparedSteps | null)[], extra: Block[], ctx: WasmContext, run: (steps: PreparedSteps[]) => void): boolean {
  const steps: (PreparedSteps | null)[] = [];
  try {
    steps.push(...prepare());
    if (steps.some((p) => p === null)) return false;
    run(steps as PreparedSteps[]);
    return true;
  } finally {
    for (const p of steps) p?.release();
    for (const b of extra) releaseBlock(ctx, b);
  }
}

export function recurrentStackForward(ctx: WasmContext, kernel: FusedStepKernel, dims: readonly LayerDims[], w: readonly DirectionWeights[], ws: readonly DirectionWorkspace[], y: readonly Storage[]): boolean {
  const pool = wavePool(ctx, kernel, dims, ws);
  if (pool === null) return false;
  const recurrentProducts = FUSED_STEPS[kernel].recurrentProducts;
  const packs: Block[] = [];
  return withPrepared(() => dims.map((d, l) => forwardSteps(ctx, kernel, d, w[l], ws[l], y[l], 0, d.H)), packs, ctx, (steps) => {
    const dt = ctx.own(ws[0].hs, 'recurrent hs').dtype;
    const layers = steps.map((p, l): WaveLayer => {
      if (l === 0) return { steps: p, after: -1, gemm: null };
      // Gx_l[t] = y_{l−1}[t] · W_ihᵀ + b_ih (+ b_hh), as recurrentLayer's whole-sequence GEMM
      const { T, B, I, H, G } = dims[l];
      const gateRows = G * H;
      const x = ctx.block(y[l - 1], 0, T * B * I, dt, 'recurrent y', false);
      const gx = ctx.block(ws[l].gx, 0, T * B * gateRows, dt, 'recurrent gx', true);
      const packed = ctx.packs.packedB(ctx, ctx.span(w[l].wIh, 0, gateRows * I, dt, 'recurrent weight_ih'), 0, I, true, I, gateRows, pool);
      packs.push(packed);
      const bias = (b: Storage | null): number => (b ? ctx.block(b, 0, gateRows, dt, 'recurrent bias', false) : 0);
      return {
        steps: p, after: l - 1,
        gemm: {
          M: B, K: I, N: gateRows, packed, lda: I, ldc: gateRows, beta: 0, bias1: bias(w[l].bIh), bias2: recurrentProducts ? 0 : bias(w[l].bHh),
          a: (s) => x + F32 * s * B * I, c: (s) => gx + F32 * s * B * gateRows,
        },
      };
    });
    runWave(ctx, pool, layers);
  });
}

export function recurrentStackBackward(ctx: WasmContext, kernel: FusedStepKernel, dims: readonly LayerDims[], w: readonly DirectionWeights[], ws: readonly DirectionWorkspace[], sc: readonly BackwardScratch[], dy: readonly (Storage | null)[]): boolean {
  const pool = wavePool(ctx, kernel, dims, ws);
  if (pool === null) return false;
  const L = dims.length;
  const packs: Block[] = [];
  // chunk i runs layer L−1−i: the top layer first, each layer below one step behind the one above
  return withPrepared(() => dims.map((_, i) => L - 1 - i).map((l) => backwardSteps(ctx, kernel, dims[l], w[l], ws[l], sc[l], dy[l], 0, dims[l].H)), packs, ctx, (steps) => {
    const dt = ctx.own(ws[0].hs, 'recurrent hs').dtype;
    const layers = steps.map((p, i): WaveLayer => {
      if (i === 0) return { steps: p, after: -1, gemm: null };
      // dy_l[t] += dGx_{l+1}[t] · W_ih of layer l+1, as recurrentLayer's dX GEMM
      const l = L - 1 - i, above = dims[l + 1];
      const { T, B, H } = dims[l];
      const gateRows = above.G * above.H;
      const dgx = ctx.block(sc[l + 1].dgx, 0, T * B * gateRows, dt, 'recurrent dgx', false);
      const dyl = ctx.block(dy[l]!, 0, T * B * H, dt, 'recurrent dy', true);
      const packed = ctx.packs.packedB(ctx, ctx.span(w[l + 1].wIh, 0, gateRows * H, dt, 'recurrent weight_ih'), 0, H, false, gateRows, H, pool);
      packs.push(packed);
      return {
        steps: p, after: i - 1,
        gemm: {
          M: B, K: gateRows, N: H, packed, lda: gateRows, ldc: H, beta: 1, bias1: 0, bias2: 0,
          a: (s) => dgx + F32 * (T - 1 - s) * B * gateRows, c: (s) => dyl + F32 * (T - 1 - s) * B * H,
        },
      };
    });
    runWave(ctx, pool, layers);
  });
}

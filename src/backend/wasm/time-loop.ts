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
import { NR, releaseBlock } from './gemm.ts';
import { JOBS, STEP_KERNELS, STEP_SLOTS, type ThreadPool } from './threads.ts';

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

export function recurrentForward(ctx: WasmContext, kernel: FusedStepKernel, dims: LayerDims, wt: DirectionWeights, ws: DirectionWorkspace, y: Storage | null, yCol: number, yStride: number): boolean {
  const cell = FUSED_STEPS[kernel];
  if (!cell) return false; // a cell kind this backend has no fused steps for: the generic loop runs it
  const dt = ctx.own(ws.hs, 'recurrent hs').dtype;
  const plan = stepPlan(ctx, dims, dt);
  if (plan === null) return false;
  const { T, B, H, G } = dims;
  const gateRows = G * H;
  const { hsPtr, csPtr, gxPtr, ghPtr } = workspaceAddresses(ctx, dims, ws, dt, true);
  const yPtr = ctx.strided(y, yCol, yStride, T * B, H, dt, 'recurrent y', true);
  const wHh = ctx.span(wt.wHh, 0, gateRows * H, dt, 'recurrent weight_hh'); // [G·H, H]
  const bHhPtr = wt.bHh && cell.recurrentProducts ? ctx.block(wt.bHh, 0, gateRows, dt, 'recurrent bias_hh', false) : 0;
  if (cell.hasCell !== (csPtr !== 0) || cell.recurrentProducts !== (ghPtr !== 0)) throw new BackendError(`wasm backend: recurrentForward: the workspace does not fit a '${kernel}' layer`);
  const lengthsPtr = layerLengths(ctx, dims);
  const wHhPacked = ctx.packs.packedB(ctx, wHh, 0, H, true, H, gateRows, plan.pool); // W_hhᵀ: K = H, N = G·H
  try {
    for (let s = 0; s < T; s++) {
      const t = ws.reverse ? T - 1 - s : s;
      const offsets = stepOffsets(dims, ws.reverse, t); // elements
      const [name, args] = cell.forward({
        B, H, t, lengthsPtr, wHhPackedPtr: wHhPacked.ptr, bHhPtr,
        gxPtr: gxPtr + F32 * offsets.gates, ghPtr: ghPtr + F32 * offsets.gates,
        ...stateAddresses(hsPtr, csPtr, offsets),
        yPtr: yPtr === 0 ? 0 : yPtr + F32 * t * B * yStride, yStride,
      });
      runStep(ctx, plan, name, H, args);
    }
  } finally {
    releaseBlock(ctx, wHhPacked);
  }
  return true;
}

export function recurrentBackward(ctx: WasmContext, kernel: FusedStepKernel, dims: LayerDims, wt: DirectionWeights, ws: DirectionWorkspace, sc: BackwardScratch, dy: Storage | null, dyCol: number, dyStride: number): boolean {
  const cell = FUSED_STEPS[kernel];
  if (!cell) return false;
  const dt = ctx.own(ws.hs, 'recurrent hs').dtype;
  const plan = stepPlan(ctx, dims, dt);
  if (plan === null) return false;
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
  try {
    let dgNextPtr = 0;
    for (let s = T - 1; s >= 0; s--) {
      const t = ws.reverse ? T - 1 - s : s;
      const offsets = stepOffsets(dims, ws.reverse, t); // elements
      const [name, args] = cell.backward({
        B, H, t, lengthsPtr, wHhPackedPtr: wHhPacked.ptr, dgNextPtr,
        gatesPtr: gatesPtr + F32 * offsets.gates, ghPtr: ghPtr + F32 * offsets.gates,
        ...stateAddresses(hsPtr, csPtr, offsets),
        dhPtr, dyPtr: dyPtr === 0 ? 0 : dyPtr + F32 * t * B * dyStride, dyStride, dcPtr,
        dgxPtr: dgxPtr + F32 * offsets.gates, dghPtr: dghPtr + F32 * offsets.gates, dcPrevPtr, dhPrevPtr,
      });
      runStep(ctx, plan, name, H, args);
      dgNextPtr = dghPtr + F32 * offsets.gates;
      [dhPtr, dhPrevPtr] = [dhPrevPtr, dhPtr];
      [sc.dh, sc.dhPrev] = [sc.dhPrev, sc.dh];
      if (sc.dc && sc.dcPrev) {
        [dcPtr, dcPrevPtr] = [dcPrevPtr, dcPtr];
        [sc.dc, sc.dcPrev] = [sc.dcPrev, sc.dc];
      }
    }
    // the gradient into the initial state: dh_0 += dG_0 · W_hh
    ctx.kernels.sgemm_compute(0, 0, B, 0, H / NR, gateRows, H, 1, dgNextPtr, gateRows, wHhPacked.ptr, 1, dhPtr, H, ctx.scratchBase);
  } finally {
    releaseBlock(ctx, wHhPacked);
  }
  return true;
}

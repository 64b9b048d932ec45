/**
 * One time step of a recurrent cell (the Backend's rnn/lstm/gru Cell Forward/Backward), for the
 * generic time loop of src/cells/recurrent.ts: float64, and float32 when the fused loop
 * (time-loop.ts) declines a layer.
 *
 * Each kernel of assembly/cells.ts takes its operands as byte addresses, a dozen or more of them
 * in a row. Here every call is written once as a record of named addresses (`…Ptr`) and one function
 * that lays the record out in the kernel's parameter order; the Backend methods only check their
 * storages into such a record. Shapes: h, c and their gradients [B, H]; gates [B, G·H] (G = 1 RNN,
 * 4 LSTM, 3 GRU); y/dy strided [B, H] blocks, rows `yStride` apart (0: no such block).
 */
import { type Activation, BackendError, type CellStep, type DType, type Storage } from '../interface.ts';
import type { WasmContext } from './context.ts';
import type { Kernels } from './loader.ts';

/** What every step kernel takes first: the batch, the width, the step, and the row lengths (0: none). */
export interface StepRows {
  B: number;
  H: number;
  t: number;
  lengthsPtr: number;
}

interface RnnForwardCall extends StepRows {
  relu: boolean;
  /** [B, H] pre-activations (backward reads the activation back from h). */
  preactPtr: number;
  hPrevPtr: number;
  hPtr: number;
  yPtr: number;
  yStride: number;
}

interface RnnBackwardCall extends StepRows {
  relu: boolean;
  hPtr: number;
  dhPtr: number;
  dyPtr: number;
  dyStride: number;
  dpreactPtr: number;
  dhPrevPtr: number;
}

interface LstmForwardCall extends StepRows {
  /** [B, 4H] pre-activations in, activated gates (i, f, g, o) out. */
  gatesPtr: number;
  hPrevPtr: number;
  cPrevPtr: number;
  cPtr: number;
  hPtr: number;
  yPtr: number;
  yStride: number;
}

interface LstmBackwardCall extends StepRows {
  gatesPtr: number;
  cPrevPtr: number;
  cPtr: number;
  dhPtr: number;
  dyPtr: number;
  dyStride: number;
  dcPtr: number;
  dgatesPtr: number;
  dcPrevPtr: number;
  dhPrevPtr: number;
}

interface GruForwardCall extends StepRows {
  /** [B, 3H] input products in, activated gates (r, z, n) out. */
  gxPtr: number;
  /** [B, 3H] recurrent products h·W_hhᵀ + b_hh (kept apart: n = tanh(gx_n + r·gh_n)). */
  ghPtr: number;
  hPrevPtr: number;
  hPtr: number;
  yPtr: number;
  yStride: number;
}

interface GruBackwardCall extends StepRows {
  gatesPtr: number;
  ghPtr: number;
  hPrevPtr: number;
  dhPtr: number;
  dyPtr: number;
  dyStride: number;
  dgxPtr: number;
  dghPtr: number;
  dhPrevPtr: number;
}

// The calls, each in its kernel's parameter order (assembly/cells.ts).

function rnnForwardCall(k: Kernels, dt: DType, a: RnnForwardCall): void {
  (dt === 'float32' ? k.rnnFwd_f32 : k.rnnFwd_f64)(a.B, a.H, a.t, a.lengthsPtr, +a.relu, a.preactPtr, a.hPrevPtr, a.hPtr, a.yPtr, a.yStride);
}
function rnnBackwardCall(k: Kernels, dt: DType, a: RnnBackwardCall): void {
  (dt === 'float32' ? k.rnnBwd_f32 : k.rnnBwd_f64)(a.B, a.H, a.t, a.lengthsPtr, +a.relu, a.hPtr, a.dhPtr, a.dyPtr, a.dyStride, a.dpreactPtr, a.dhPrevPtr);
}
function lstmForwardCall(k: Kernels, dt: DType, a: LstmForwardCall): void {
  (dt === 'float32' ? k.lstmFwd_f32 : k.lstmFwd_f64)(a.B, a.H, a.t, a.lengthsPtr, a.gatesPtr, a.hPrevPtr, a.cPrevPtr, a.cPtr, a.hPtr, a.yPtr, a.yStride);
}
function lstmBackwardCall(k: Kernels, dt: DType, a: LstmBackwardCall): void {
  (dt === 'float32' ? k.lstmBwd_f32 : k.lstmBwd_f64)(
    a.B, a.H, a.t, a.lengthsPtr, a.gatesPtr, a.cPrevPtr, a.cPtr, a.dhPtr, a.dyPtr, a.dyStride, a.dcPtr, a.dgatesPtr, a.dcPrevPtr, a.dhPrevPtr,
  );
}
function gruForwardCall(k: Kernels, dt: DType, a: GruForwardCall): void {
  (dt === 'float32' ? k.gruFwd_f32 : k.gruFwd_f64)(a.B, a.H, a.t, a.lengthsPtr, a.gxPtr, a.ghPtr, a.hPrevPtr, a.hPtr, a.yPtr, a.yStride);
}
function gruBackwardCall(k: Kernels, dt: DType, a: GruBackwardCall): void {
  (dt === 'float32' ? k.gruBwd_f32 : k.gruBwd_f64)(
    a.B, a.H, a.t, a.lengthsPtr, a.gatesPtr, a.ghPtr, a.hPrevPtr, a.dhPtr, a.dyPtr, a.dyStride, a.dgxPtr, a.dghPtr, a.dhPrevPtr,
  );
}

function checkActivation(act: Activation): void {
  if (act !== 'tanh' && act !== 'relu') throw new BackendError(`wasm backend: unknown activation '${String(act)}'`);
}

// The Backend's step kernels: check every storage into the call's record (the checks run in the
// record's order), then make the call — after the lengths are copied in, and only for a
// non-empty step.

export function rnnCellForward(ctx: WasmContext, s: CellStep, act: Activation, pre: Storage, gOff: number, hPrev: Storage, hPrevOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void {
  checkActivation(act);
  const { B, H, t } = s;
  const dt = ctx.own(h, 'rnnCellForward h').dtype;
  const n = B * H;
  const call: RnnForwardCall = {
    B, H, t, lengthsPtr: 0, relu: act === 'relu',
    preactPtr: ctx.block(pre, gOff, n, dt, 'rnnCellForward pre', false),
    hPrevPtr: ctx.block(hPrev, hPrevOff, n, dt, 'rnnCellForward hPrev', false),
    hPtr: ctx.block(h, hOff, n, dt, 'rnnCellForward h', true),
    yPtr: ctx.strided(y, yOff, yStride, B, H, dt, 'rnnCellForward y', true), yStride,
  };
  if (n === 0) return;
  call.lengthsPtr = ctx.lengthsAddress(s);
  rnnForwardCall(ctx.kernels, dt, call);
}

export function rnnCellBackward(ctx: WasmContext, s: CellStep, act: Activation, h: Storage, hOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dpre: Storage, gOff: number, dhPrev: Storage, dhPrevOff: number): void {
  checkActivation(act);
  const { B, H, t } = s;
  const dt = ctx.own(dpre, 'rnnCellBackward dpre').dtype;
  const n = B * H;
  const call: RnnBackwardCall = {
    B, H, t, lengthsPtr: 0, relu: act === 'relu',
    hPtr: ctx.block(h, hOff, n, dt, 'rnnCellBackward h', false),
    dhPtr: ctx.block(dh, dhOff, n, dt, 'rnnCellBackward dh', false),
    dyPtr: ctx.strided(dy, dyOff, dyStride, B, H, dt, 'rnnCellBackward dy', false), dyStride,
    dpreactPtr: ctx.block(dpre, gOff, n, dt, 'rnnCellBackward dpre', true),
    dhPrevPtr: ctx.block(dhPrev, dhPrevOff, n, dt, 'rnnCellBackward dhPrev', true),
  };
  if (n === 0) return;
  call.lengthsPtr = ctx.lengthsAddress(s);
  rnnBackwardCall(ctx.kernels, dt, call);
}

export function lstmCellForward(ctx: WasmContext, s: CellStep, gates: Storage, gOff: number, hPrev: Storage, hPrevOff: number, cPrev: Storage, cPrevOff: number, c: Storage, cOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void {
  const { B, H, t } = s;
  const dt = ctx.own(h, 'lstmCellForward h').dtype;
  const n = B * H;
  const call: LstmForwardCall = {
    B, H, t, lengthsPtr: 0,
    gatesPtr: ctx.block(gates, gOff, 4 * n, dt, 'lstmCellForward gates', true),
    hPrevPtr: ctx.block(hPrev, hPrevOff, n, dt, 'lstmCellForward hPrev', false),
    cPrevPtr: ctx.block(cPrev, cPrevOff, n, dt, 'lstmCellForward cPrev', false),
    cPtr: ctx.block(c, cOff, n, dt, 'lstmCellForward c', true),
    hPtr: ctx.block(h, hOff, n, dt, 'lstmCellForward h', true),
    yPtr: ctx.strided(y, yOff, yStride, B, H, dt, 'lstmCellForward y', true), yStride,
  };
  if (n === 0) return;
  call.lengthsPtr = ctx.lengthsAddress(s);
  lstmForwardCall(ctx.kernels, dt, call);
}

export function lstmCellBackward(ctx: WasmContext, s: CellStep, gates: Storage, gOff: number, cPrev: Storage, cPrevOff: number, c: Storage, cOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dc: Storage, dcOff: number, dgates: Storage, dgOff: number, dcPrev: Storage, dcPrevOff: number, dhPrev: Storage, dhPrevOff: number): void {
  const { B, H, t } = s;
  const dt = ctx.own(dgates, 'lstmCellBackward dgates').dtype;
  const n = B * H;
  const call: LstmBackwardCall = {
    B, H, t, lengthsPtr: 0,
    gatesPtr: ctx.block(gates, gOff, 4 * n, dt, 'lstmCellBackward gates', false),
    cPrevPtr: ctx.block(cPrev, cPrevOff, n, dt, 'lstmCellBackward cPrev', false),
    cPtr: ctx.block(c, cOff, n, dt, 'lstmCellBackward c', false),
    dhPtr: ctx.block(dh, dhOff, n, dt, 'lstmCellBackward dh', false),
    dyPtr: ctx.strided(dy, dyOff, dyStride, B, H, dt, 'lstmCellBackward dy', false), dyStride,
    dcPtr: ctx.block(dc, dcOff, n, dt, 'lstmCellBackward dc', false),
    dgatesPtr: ctx.block(dgates, dgOff, 4 * n, dt, 'lstmCellBackward dgates', true),
    dcPrevPtr: ctx.block(dcPrev, dcPrevOff, n, dt, 'lstmCellBackward dcPrev', true),
    dhPrevPtr: ctx.block(dhPrev, dhPrevOff, n, dt, 'lstmCellBackward dhPrev', true),
  };
  if (n === 0) return;
  call.lengthsPtr = ctx.lengthsAddress(s);
  lstmBackwardCall(ctx.kernels, dt, call);
}

export function gruCellForward(ctx: WasmContext, s: CellStep, gx: Storage, gxOff: number, gh: Storage, ghOff: number, hPrev: Storage, hPrevOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void {
  const { B, H, t } = s;
  const dt = ctx.own(h, 'gruCellForward h').dtype;
  const n = B * H;
  const call: GruForwardCall = {
    B, H, t, lengthsPtr: 0,
    gxPtr: ctx.block(gx, gxOff, 3 * n, dt, 'gruCellForward gx', true),
    ghPtr: ctx.block(gh, ghOff, 3 * n, dt, 'gruCellForward gh', false),
    hPrevPtr: ctx.block(hPrev, hPrevOff, n, dt, 'gruCellForward hPrev', false),
    hPtr: ctx.block(h, hOff, n, dt, 'gruCellForward h', true),
    yPtr: ctx.strided(y, yOff, yStride, B, H, dt, 'gruCellForward y', true), yStride,
  };
  if (n === 0) return;
  call.lengthsPtr = ctx.lengthsAddress(s);
  gruForwardCall(ctx.kernels, dt, call);
}

export function gruCellBackward(ctx: WasmContext, s: CellStep, gates: Storage, gOff: number, gh: Storage, ghOff: number, hPrev: Storage, hPrevOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dgx: Storage, dgxOff: number, dgh: Storage, dghOff: number, dhPrev: Storage, dhPrevOff: number): void {
  const { B, H, t } = s;
  const dt = ctx.own(dgx, 'gruCellBackward dgx').dtype;
  const n = B * H;
  const call: GruBackwardCall = {
    B, H, t, lengthsPtr: 0,
    gatesPtr: ctx.block(gates, gOff, 3 * n, dt, 'gruCellBackward gates', false),
    ghPtr: ctx.block(gh, ghOff, 3 * n, dt, 'gruCellBackward gh', false),
    hPrevPtr: ctx.block(hPrev, hPrevOff, n, dt, 'gruCellBackward hPrev', false),
    dhPtr: ctx.block(dh, dhOff, n, dt, 'gruCellBackward dh', false),
    dyPtr: ctx.strided(dy, dyOff, dyStride, B, H, dt, 'gruCellBackward dy', false), dyStride,
    dgxPtr: ctx.block(dgx, dgxOff, 3 * n, dt, 'gruCellBackward dgx', true),
    dghPtr: ctx.block(dgh, dghOff, 3 * n, dt, 'gruCellBackward dgh', true),
    dhPrevPtr: ctx.block(dhPrev, dhPrevOff, n, dt, 'gruCellBackward dhPrev', true),
  };
  if (n === 0) return;
  call.lengthsPtr = ctx.lengthsAddress(s);
  gruBackwardCall(ctx.kernels, dt, call);
}

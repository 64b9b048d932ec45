/**
 * Row-wise kernels: softmax, softmax cross-entropy (forward and backward side by side), and the
 * embedding's gather and scatter-add of table rows. The float32 cross-entropy and scatter-add split
 * across the pool by rows or columns; every output element is still computed by one thread in the
 * single-threaded order, so the split never changes a result.
 */
import { elementBytes, BackendError, type Storage } from '../interface.ts';
import { type WasmContext, markWritten } from './context.ts';
import { JOBS } from './threads.ts';

/** Every target is a class in [0, cols) or the ignore index (the message names the op, row and value). */
function checkTargets(op: string, targets: Int32Array, rows: number, cols: number, ignoreIndex: number): void {
  if (targets.length < rows) throw new BackendError(`wasm backend: ${op}: ${targets.length} targets for ${rows} rows`);
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    if (t !== ignoreIndex && !(t >= 0 && t < cols)) {
      throw new BackendError(`${op}: target ${t} at row ${r} is outside [0, ${cols}) and is not the ignore index ${ignoreIndex}`);
    }
  }
}

export function softmax(ctx: WasmContext, rows: number, cols: number, xs: Storage, outs: Storage, log: boolean): void {
  const o = ctx.own(outs, 'softmax out');
  ctx.span(o, 0, rows * cols, o.dtype, 'softmax out');
  const x = ctx.span(xs, 0, rows * cols, o.dtype, 'softmax x');
  if (rows * cols === 0) return;
  (o.dtype === 'float32' ? ctx.kernels.softmax_f32 : ctx.kernels.softmax_f64)(rows, cols, x.ptr, markWritten(o).ptr, +log);
}

export function softmaxBackward(ctx: WasmContext, rows: number, cols: number, ys: Storage, dys: Storage, dxs: Storage, log: boolean): void {
  const dx = ctx.own(dxs, 'softmaxBackward dx');
  const n = rows * cols;
  ctx.span(dx, 0, n, dx.dtype, 'softmaxBackward dx');
  const y = ctx.span(ys, 0, n, dx.dtype, 'softmaxBackward y');
  const dy = ctx.span(dys, 0, n, dx.dtype, 'softmaxBackward dy');
  if (n === 0) return;
  (dx.dtype === 'float32' ? ctx.kernels.softmaxBackward_f32 : ctx.kernels.softmaxBackward_f64)(rows, cols, y.ptr, dy.ptr, markWritten(dx).ptr, +log);
}

/** A storage and the name errors give it. */
type Named = readonly [storage: Storage, name: string];

/**
 * The operands softmax cross-entropy forward and backward share, checked in this order (errors
 * name them `${op} ${name}`): the [rows, cols] result, whose dtype the call takes; a [rows, cols]
 * operand; a [rows] one (written by the call when `perRowOut`); then the targets, which are copied
 * into wasm memory. Their addresses, or null when there are no rows.
 */
function sceAddresses(ctx: WasmContext, op: string, rows: number, cols: number, [result, resultName]: Named, [full, fullName]: Named, [perRow, perRowName]: Named, perRowOut: boolean, targets: Int32Array, ignoreIndex: number) {
  const dt = ctx.own(result, `${op} ${resultName}`).dtype;
  const resultPtr = ctx.block(result, 0, rows * cols, dt, `${op} ${resultName}`, true);
  const fullPtr = ctx.block(full, 0, rows * cols, dt, `${op} ${fullName}`, false);
  const perRowPtr = ctx.block(perRow, 0, rows, dt, `${op} ${perRowName}`, perRowOut);
  checkTargets(op, targets, rows, cols, ignoreIndex);
  if (rows === 0) return null;
  return { dt, resultPtr, fullPtr, perRowPtr, targetsPtr: ctx.hostInts(targets, rows) };
}

export function softmaxCrossEntropy(ctx: WasmContext, rows: number, cols: number, logits: Storage, targets: Int32Array, ignoreIndex: number, probs: Storage, loss: Storage): void {
  const a = sceAddresses(ctx, 'softmaxCrossEntropy', rows, cols, [probs, 'probs'], [logits, 'logits'], [loss, 'loss'], true, targets, ignoreIndex);
  if (a === null) return;
  const { resultPtr: p, fullPtr: x, perRowPtr: l, targetsPtr } = a;
  if (a.dt === 'float64') {
    ctx.kernels.sce_f64(rows, cols, x, targetsPtr, ignoreIndex, p, l);
    return;
  }
  // sceRows_f32 keeps a row's exponentials in the thread's GEMM scratch (8·cols bytes)
  if (8 * cols > ctx.scratchBytes) {
    ctx.kernels.sce_f32(rows, cols, x, targetsPtr, ignoreIndex, p, l);
    return;
  }
  const pool = ctx.pool;
  if (pool === null || rows * cols < 2 ** 14 || rows < 4 * pool.size) {
    ctx.kernels.sceRows_f32(rows, cols, x, targetsPtr, ignoreIndex, p, l, ctx.scratchBase);
    return;
  }
  const rowsPerChunk = Math.ceil(rows / (4 * pool.size));
  const args = pool.args; // slot layout: threads.ts
  args[0] = JOBS.SCE; args[1] = rows; args[2] = cols; args[3] = x; args[4] = targetsPtr; args[5] = ignoreIndex; args[6] = p; args[7] = l; args[8] = 0;
  args[14] = rowsPerChunk; args[15] = ctx.scratchBase; args[16] = ctx.scratchBytes;
  pool.run(ctx.kernels, Math.ceil(rows / rowsPerChunk));
}

export function softmaxCrossEntropyBackward(ctx: WasmContext, rows: number, cols: number, probs: Storage, targets: Int32Array, ignoreIndex: number, rowGrad: Storage, dlogits: Storage): void {
  const a = sceAddresses(ctx, 'softmaxCrossEntropyBackward', rows, cols, [dlogits, 'dlogits'], [probs, 'probs'], [rowGrad, 'rowGrad'], false, targets, ignoreIndex);
  if (a === null) return;
  const { resultPtr: dx, fullPtr: p, perRowPtr: g, targetsPtr } = a;
  const pool = ctx.pool;
  if (a.dt === 'float64' || pool === null || rows * cols < 2 ** 15 || rows < 4 * pool.size) {
    (a.dt === 'float32' ? ctx.kernels.sceBackward_f32 : ctx.kernels.sceBackward_f64)(rows, cols, p, targetsPtr, ignoreIndex, g, dx);
    return;
  }
  // float32 by row ranges on the pool (rows are independent; memory-bound, cold in a training step)
  const rowsPerChunk = Math.ceil(rows / (4 * pool.size));
  const args = pool.args; // slot layout: threads.ts
  args[0] = JOBS.SCE; args[1] = rows; args[2] = cols; args[3] = p; args[4] = targetsPtr; args[5] = ignoreIndex; args[6] = g; args[7] = dx; args[8] = 1; args[14] = rowsPerChunk;
  pool.run(ctx.kernels, Math.ceil(rows / rowsPerChunk));
}

function checkIndices(what: string, idx: Int32Array, rows: number): void {
  for (let i = 0; i < idx.length; i++) {
    const k = idx[i];
    if (!(k >= 0 && k < rows)) throw new BackendError(`${what}: index ${k} at position ${i} is outside [0, ${rows})`);
  }
}

export function gatherRows(ctx: WasmContext, cols: number, table: Storage, idx: Int32Array, out: Storage): void {
  const o = ctx.own(out, 'gatherRows out');
  const tab = ctx.own(table, 'gatherRows table');
  if (tab.dtype !== o.dtype) throw new BackendError(`wasm backend: gatherRows table is ${tab.dtype} but out is ${o.dtype}`);
  const rows = cols > 0 ? Math.floor(tab.size / cols) : 0;
  ctx.span(o, 0, idx.length * cols, o.dtype, 'gatherRows out');
  checkIndices('gatherRows', idx, rows);
  if (idx.length === 0 || cols === 0) return;
  ctx.kernels.gatherRows(cols * elementBytes(o.dtype), tab.ptr, ctx.hostInts(idx), idx.length, markWritten(o).ptr);
}

export function scatterAddRows(ctx: WasmContext, cols: number, dout: Storage, idx: Int32Array, dtable: Storage): void {
  const dtab = ctx.own(dtable, 'scatterAddRows dtable');
  const rows = cols > 0 ? Math.floor(dtab.size / cols) : 0;
  const g = ctx.span(dout, 0, idx.length * cols, dtab.dtype, 'scatterAddRows dout');
  checkIndices('scatterAddRows', idx, rows);
  if (idx.length === 0 || cols === 0) return;
  const idxPtr = ctx.hostInts(idx);
  markWritten(dtab);
  if (dtab.dtype === 'float64') {
    ctx.kernels.scatterAdd_f64(cols, g.ptr, idxPtr, idx.length, dtab.ptr);
    return;
  }
  const pool = ctx.pool;
  if (pool === null || idx.length * cols < 2 ** 16 || cols < 128) {
    ctx.kernels.scatterAddLd_f32(cols, cols, g.ptr, idxPtr, idx.length, dtab.ptr);
    return;
  }
  // one column range per thread (every element still sums in index order: bit-identical)
  const colsPerChunk = Math.max(64, Math.ceil(cols / pool.size / 16) * 16);
  const args = pool.args; // slot layout: threads.ts
  args[0] = JOBS.SCATTER; args[1] = cols; args[2] = g.ptr; args[3] = idxPtr; args[4] = idx.length; args[5] = dtab.ptr; args[14] = colsPerChunk;
  pool.run(ctx.kernels, Math.ceil(cols / colsPerChunk));
}

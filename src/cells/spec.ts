/**
 * The cell record: every fact about one cell kind in one place. The layer (cells/recurrent.ts),
 * the nn modules, the ONNX import and export and the Keras import read the gate count, the gate
 * order and its foreign layouts, the cell state and the step functions from here, so adding a
 * cell kind is one file (its record and steps) plus one entry in the CELLS table.
 *
 * Gate layouts. Weights hold G blocks of H rows, one per gate, in recur's (PyTorch's) order
 * `gates`. Other formats store the same gates in another order; a record lists that order by
 * recur's gate names (ONNX calls LSTM's g "c" and GRU's n "h": same gates, recur's names here),
 * and `reorderGates` moves blocks between any two layouts. Moving values is exact, so an
 * import → export round trip gives back the same bits.
 */
import type { Backend, FusedStepKernel, Storage } from '../backend/interface.ts';
import type { BackwardScratch, DirectionWeights, DirectionWorkspace, LayerDims } from '../backend/interface.ts';

/** The cell kinds; each has one record (CellSpec) in the CELLS table of recurrent.ts. */
export type RecurrentMode = 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU' | 'MGU';

/** Where gate blocks are laid out: recur's own order, or a foreign format's. */
export type GateLayout = 'recur' | 'onnx' | 'keras';

/** How a foreign format stores this cell kind: its op / layer name and its gate order. */
export interface ForeignCell {
  /** ONNX operator type or Keras layer class. */
  name: string;
  /** The format's gate block order, by recur's gate names. */
  gates: readonly string[];
}

export interface CellSpec {
  mode: RecurrentMode;
  /** Gate count G: the weights hold G blocks of H rows (G·H rows in all). */
  G: number;
  /** The gate blocks' names in recur's order (PyTorch's, where PyTorch has the cell). */
  gates: readonly string[];
  /** The cell in other formats (absent where the format has no such cell). */
  onnx?: ForeignCell;
  keras?: ForeignCell;
  /** Whether the cell carries a cell state c beside h (LSTM). */
  hasCell: boolean;
  /**
   * Whether b_hh is added into gx up front (true for RNN/LSTM; GRU and MGU need it inside
   * r·(W_hn h + b_hn), so they keep the recurrent products gh apart).
   */
  foldRecurrentBias: boolean;
  /** The backend's fused time-loop kernels for this cell (see FusedStepKernel), or null: generic loop only. */
  fusedSteps: FusedStepKernel | null;
  /**
   * One forward step at time t: recurrent GEMM + gate kernel; writes the next state and the
   * output y[t, :, yCol : yCol+H] (row stride yStride) when y is given.
   */
  forwardStep(be: Backend, w: DirectionWeights, ws: DirectionWorkspace, dims: LayerDims, t: number, y: Storage | null, yCol: number, yStride: number): void;
  /**
   * One BPTT step at time t: reads sc.dh (+ dy) and sc.dc, writes sc.dgx[t] / sc.dgh[t], and
   * OVERWRITES sc.dhPrev / sc.dcPrev with the gradient into the previous state (including the
   * recurrent GEMM dgh·W_hh). The caller swaps the ping-pong buffers.
   */
  backwardStep(be: Backend, w: DirectionWeights, ws: DirectionWorkspace, sc: BackwardScratch, dims: LayerDims, t: number, dy: Storage | null, dyCol: number, dyStride: number): void;
}

/** A cell's gate order in `layout`, by recur's gate names. */
export function gateOrder(cell: CellSpec, layout: GateLayout): readonly string[] {
  if (layout === 'recur') return cell.gates;
  const foreign = cell[layout];
  if (!foreign) throw new TypeError(`${cell.mode} has no ${layout === 'onnx' ? 'ONNX' : 'Keras'} gate layout`);
  return foreign.gates;
}

/** Where reorderGates reads and writes: G blocks of H rows of `cols` values each. */
export interface GateBlocks<D extends { [i: number]: number }> {
  cell: CellSpec;
  H: number;
  /** Values per row: the input size for W_ih, H for W_hh, 1 for a bias. */
  cols: number;
  /** First element of the G·H·cols block in the source (default 0). */
  srcOffset?: number;
  /** Destination, written at dstOffset (default 0). */
  dst: D;
  dstOffset?: number;
}

/**
 * Copy the G gate blocks of `src` (row-major [G·H, cols] from srcOffset) laid out as `from` into
 * `dst` laid out as `to`. Returns dst.
 */
export function reorderGates<D extends { [i: number]: number }>(src: ArrayLike<number>, from: GateLayout, to: GateLayout, blocks: GateBlocks<D>): D {
  const { cell, H, cols, srcOffset = 0, dst, dstOffset = 0 } = blocks;
  const fromOrder = gateOrder(cell, from), toOrder = gateOrder(cell, to);
  const block = H * cols;
  for (let k = 0; k < toOrder.length; k++) {
    const srcBlock = fromOrder.indexOf(toOrder[k]);
    const s = srcOffset + srcBlock * block, d = dstOffset + k * block;
    for (let j = 0; j < block; j++) dst[d + j] = src[s + j];
  }
  return dst;
}

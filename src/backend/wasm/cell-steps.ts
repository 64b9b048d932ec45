/**
 * One time step of a recurrent cell (the Backend's rnn/lstm/gru Cell Forward/Backward), for the
 * generic time loop of src/cells/recurrent.ts: float64, and float32 when the fused loop
 * (time-loop.ts) declines a layer.
 *
 * Each kernel of assembly/cells.ts takes the step (B, H, t, row lengths), then its operands as byte
 * addresses in the same order as the Backend method takes them as (storage, offset) pairs. So every
 * kernel is written once, as a table of its operands in that order (STEPS below), and one function
 * checks the method's storages against the table and lays the addresses out for the call. Shapes:
 * h, c and their gradients [B, H]; gates [B, G·H] (G = 1 RNN, 4 LSTM, 3 GRU); y/dy strided [B, H]
 * rows `yStride` apart (a null storage: no such rows, address and stride 0).
 */
import { type Activation, type Backend, BackendError, type CellStep, type Storage } from '../interface.ts';
import type { WasmContext } from './context.ts';
import type { Kernels } from './loader.ts';

/** What every step kernel takes first: the batch, the width, the step, and the row lengths (0: none). */
export interface StepRows {
  B: number;
  H: number;
  t: number;
  lengthsPtr: number;
}

/**
 * An operand of a step kernel: a [B, H] block ('state'), a [B, G·H] block ('gates'), or strided
 * [B, H] rows that may be absent ('rows': the method passes storage or null, offset and stride; the
 * kernel takes address and stride). `out`: the kernel writes it.
 */
type Operand = readonly [name: string, kind: 'state' | 'gates' | 'rows', out?: 'out'];

interface StepKernelSpec {
  /** The kernel of assembly/cells.ts, without its _f32/_f64 suffix. */
  kernel: 'rnnFwd' | 'rnnBwd' | 'lstmFwd' | 'lstmBwd' | 'gruFwd' | 'gruBwd';
  /** Gate blocks per row. */
  G: number;
  /** The operand whose dtype the call takes. */
  dtypeOf: string;
  /** In the kernel's parameter order, which is the Backend method's. */
  operands: readonly Operand[];
}

type StepMethod = 'rnnCellForward' | 'rnnCellBackward' | 'lstmCellForward' | 'lstmCellBackward' | 'gruCellForward' | 'gruCellBackward';

// pre/dpre: the RNN's [B, H] pre-activations (backward reads the activation back from h). LSTM gates:
// [B, 4H] pre-activations in, activated gates (i, f, g, o) out. GRU gx: [B, 3H] input products in,
// activated gates (r, z, n) out; gh: the recurrent products h·W_hhᵀ + b_hh, kept apart
// (n = tanh(gx_n + r·gh_n)).
const STEPS: Record<StepMethod, StepKernelSpec> = {
  rnnCellForward: { kernel: 'rnnFwd', G: 1, dtypeOf: 'h', operands: [['pre', 'gates'], ['hPrev', 'state'], ['h', 'state', 'out'], ['y', 'rows', 'out']] },
  rnnCellBackward: {
    kernel: 'rnnBwd', G: 1, dtypeOf: 'dpre',
    operands: [['h', 'state'], ['dh', 'state'], ['dy', 'rows'], ['dpre', 'gates', 'out'], ['dhPrev', 'state', 'out']],
  },
  lstmCellForward: {
    kernel: 'lstmFwd', G: 4, dtypeOf: 'h',
    operands: [['gates', 'gates', 'out'], ['hPrev', 'state'], ['cPrev', 'state'], ['c', 'state', 'out'], ['h', 'state', 'out'], ['y', 'rows', 'out']],
  },
  lstmCellBackward: {
    kernel: 'lstmBwd', G: 4, dtypeOf: 'dgates',
    operands: [
      ['gates', 'gates'], ['cPrev', 'state'], ['c', 'state'], ['dh', 'state'], ['dy', 'rows'], ['dc', 'state'],
      ['dgates', 'gates', 'out'], ['dcPrev', 'state', 'out'], ['dhPrev', 'state', 'out'],
    ],
  },
  gruCellForward: { kernel: 'gruFwd', G: 3, dtypeOf: 'h', operands: [['gx', 'gates', 'out'], ['gh', 'gates'], ['hPrev', 'state'], ['h', 'state', 'out'], ['y', 'rows', 'out']] },
  gruCellBackward: {
    kernel: 'gruBwd', G: 3, dtypeOf: 'dgx',
    operands: [['gates', 'gates'], ['gh', 'gates'], ['hPrev', 'state'], ['dh', 'state'], ['dy', 'rows'], ['dgx', 'gates', 'out'], ['dgh', 'gates', 'out'], ['dhPrev', 'state', 'out']],
  },
};

/** A method's table as its calls use it: with the names errors give and the argument positions worked out once. */
interface PreparedStep {
  G: number;
  f32: keyof Kernels;
  f64: keyof Kernels;
  /** Where the storage whose dtype the call takes is among the method's arguments, and its name. */
  dtypeArg: number;
  dtypeWhat: string;
  operands: { what: string; kind: Operand[1]; out: boolean; arg: number }[];
}

function prepare(method: StepMethod): PreparedStep {
  const { kernel, G, dtypeOf, operands } = STEPS[method];
  const prepared: PreparedStep = { G, f32: `${kernel}_f32`, f64: `${kernel}_f64`, dtypeArg: -1, dtypeWhat: `${method} ${dtypeOf}`, operands: [] };
  // the method's arguments: (storage, offset) for a block, (storage | null, offset, stride) for rows
  let arg = 0;
  for (const [name, kind, out] of operands) {
    if (name === dtypeOf) prepared.dtypeArg = arg;
    prepared.operands.push({ what: `${method} ${name}`, kind, out: out === 'out', arg });
    arg += kind === 'rows' ? 3 : 2;
  }
  return prepared;
}

const PREPARED = Object.fromEntries(Object.keys(STEPS).map((m) => [m, prepare(m as StepMethod)])) as Record<StepMethod, PreparedStep>;

/**
 * Checks the storages of one step against its table, in the table's order, after the one whose
 * dtype the call takes (errors name them `${method} ${operand}`); then, for a non-empty step and
 * after the lengths are copied in, calls the kernel. `flags`: what the kernel takes between the
 * step and the operands (the RNN's relu).
 */
function runStep(ctx: WasmContext, method: StepMethod, s: CellStep, flags: readonly number[], args: readonly (Storage | number | null)[]): void {
  const p = PREPARED[method];
  const { B, H, t } = s;
  const n = B * H;
  const dt = ctx.own(args[p.dtypeArg] as Storage, p.dtypeWhat).dtype;
  const addresses: number[] = [];
  for (const { what, kind, out, arg } of p.operands) {
    const storage = args[arg] as Storage | null, off = args[arg + 1] as number;
    if (kind === 'rows') {
      const stride = args[arg + 2] as number;
      addresses.push(ctx.strided(storage, off, stride, B, H, dt, what, out), stride);
    } else {
      addresses.push(ctx.block(storage!, off, kind === 'gates' ? p.G * n : n, dt, what, out));
    }
  }
  if (n === 0) return;
  (ctx.kernels[dt === 'float32' ? p.f32 : p.f64] as (...a: number[]) => void)(B, H, t, ctx.lengthsAddress(s), ...flags, ...addresses);
}

function reluFlag(act: Activation): number {
  if (act !== 'tanh' && act !== 'relu') throw new BackendError(`wasm backend: unknown activation '${String(act)}'`);
  return +(act === 'relu');
}

/** A Backend step method's arguments after the step (and the RNN's activation). */
type OperandArgs<M extends StepMethod> = Parameters<Backend[M]> extends [CellStep, Activation, ...infer R] ? R
  : Parameters<Backend[M]> extends [CellStep, ...infer R] ? R : never;

// The Backend's step kernels.

export function rnnCellForward(ctx: WasmContext, s: CellStep, act: Activation, ...operands: OperandArgs<'rnnCellForward'>): void {
  runStep(ctx, 'rnnCellForward', s, [reluFlag(act)], operands);
}
export function rnnCellBackward(ctx: WasmContext, s: CellStep, act: Activation, ...operands: OperandArgs<'rnnCellBackward'>): void {
  runStep(ctx, 'rnnCellBackward', s, [reluFlag(act)], operands);
}
export function lstmCellForward(ctx: WasmContext, s: CellStep, ...operands: OperandArgs<'lstmCellForward'>): void {
  runStep(ctx, 'lstmCellForward', s, [], operands);
}
export function lstmCellBackward(ctx: WasmContext, s: CellStep, ...operands: OperandArgs<'lstmCellBackward'>): void {
  runStep(ctx, 'lstmCellBackward', s, [], operands);
}
export function gruCellForward(ctx: WasmContext, s: CellStep, ...operands: OperandArgs<'gruCellForward'>): void {
  runStep(ctx, 'gruCellForward', s, [], operands);
}
export function gruCellBackward(ctx: WasmContext, s: CellStep, ...operands: OperandArgs<'gruCellBackward'>): void {
  runStep(ctx, 'gruCellBackward', s, [], operands);
}

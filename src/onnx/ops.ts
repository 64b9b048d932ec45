/**
 * The non-recurrent ONNX operators recur's interpreter runs (opsets 7 and up): the ops an
 * exported recur model uses — Gather (embedding), MatMul / Gemm / Add (linear), Softmax,
 * LogSoftmax, Concat, Slice, Reshape, Transpose, Squeeze, Unsqueeze — plus the small change that
 * real-world graphs wrap around them: Identity, Constant, Cast, Shape, Flatten, Split, Dropout
 * (inference), Sub, Mul, Div, Tanh, Sigmoid, Relu, Exp, Log, Neg, Sqrt, Abs, ReduceSum, ReduceMean —
 * and what exporters wrap around recurrent layers: shape arithmetic (Shape with start/end, Gather,
 * Concat of shape tensors, ConstantOfShape, Expand, Range, Tile), masks (Equal, Greater, Less,
 * GreaterOrEqual, LessOrEqual, Not, And, Or, Xor, Where, ReduceMax/ReduceMin/ReduceProd), the sort
 * of unsorted packed sequences (TopK, ScatterElements), Pad, and the
 * element-wise functions of heads (Min, Max, Clip, Pow, Erf, Softplus, HardSigmoid, LeakyRelu, Elu).
 * The ops the spec introduced after opset 7 are refused in older models, and each takes the element
 * types its spec allows at the model's opset.
 *
 * The layers' float math (MatMul, Gemm, the activations, Softmax, …) runs on the recur backend
 * through recur's ops; integer tensors (ids, shapes, axes) are handled on the host, and so are the
 * comparisons, masks, sorts and small element-wise functions above (in float64, rounded once to the
 * output type: they are small next to the recurrent layers, and exact types matter more there). Where an opset changed an operator (Softmax's axis semantics in 13,
 * Squeeze/Unsqueeze/Split axes moving from attributes to inputs in 13, Slice in 10), both forms
 * are implemented and chosen by the model's opset.
 *
 * Every kernel calls `ctx.checkElements(shape, …)` BEFORE it allocates a result: that enforces
 * limits.tensorElements, and while the node is constant-folded at load time it charges the bytes
 * to limits.foldedConstantBytes (see FoldBudget), so a small file cannot make folding allocate
 * gigabytes. Views (Reshape, Squeeze, Unsqueeze, Flatten, Identity) allocate nothing. Loops run
 * over output elements or over the file's own lists, never over a product that a zero-sized
 * dimension makes empty (a [10^9, 0] tensor is legal and holds nothing).
 *
 * The operators live by family in ops/: float.ts (backend float math), shape.ts (views, copies and
 * shape building), host.ts (comparisons, masks, sorts and small functions on the host), with what
 * they share in common.ts; this file is the table.
 */
import { abs, exp, log, neg, relu, sigmoid, sqrt, tanh } from '../autograd/ops/elementwise.ts';
import { since, type OpCompiler } from './ops/common.ts';
import { binary, unary, MatMul, Gemm, softmaxOp, reduceOp } from './ops/float.ts';
import { Identity, Dropout, Constant, Cast, Shape, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Concat, Split, Slice, Gather, ConstantOfShape, Expand, Tile, Range, Pad } from './ops/shape.ts';
import { compare, logic, Not, Where, minMax, Clip, Pow, erf, hostUnary, reduceHost, TopK, ScatterElements } from './ops/host.ts';

export type { OpCompiler } from './ops/common.ts';

export const STANDARD_OPS: Record<string, OpCompiler> = {
  Add: binary('Add'),
  Sub: binary('Sub'),
  Mul: binary('Mul'),
  Div: binary('Div'),
  Tanh: unary('Tanh', tanh),
  Sigmoid: unary('Sigmoid', sigmoid),
  Relu: unary('Relu', relu),
  Exp: unary('Exp', exp),
  Log: unary('Log', log),
  Neg: unary('Neg', neg),
  Sqrt: unary('Sqrt', sqrt),
  Abs: unary('Abs', abs),
  MatMul,
  Gemm,
  Softmax: softmaxOp(false),
  LogSoftmax: softmaxOp(true),
  Identity,
  Dropout,
  Constant,
  Cast,
  Shape,
  Reshape,
  Flatten,
  Transpose,
  Squeeze,
  Unsqueeze,
  Concat,
  Split,
  Slice,
  Gather,
  ReduceSum: reduceOp('ReduceSum'),
  ReduceMean: reduceOp('ReduceMean'),
  ReduceMax: reduceHost('ReduceMax'),
  ReduceMin: reduceHost('ReduceMin'),
  ReduceProd: reduceHost('ReduceProd'),
  TopK,
  ScatterElements: since(11, ScatterElements),
  Equal: compare('Equal'),
  Greater: compare('Greater'),
  Less: compare('Less'),
  GreaterOrEqual: since(12, compare('GreaterOrEqual')),
  LessOrEqual: since(12, compare('LessOrEqual')),
  Not,
  And: logic('And'),
  Or: logic('Or'),
  Xor: logic('Xor'),
  Where: since(9, Where),
  Min: minMax('Min'),
  Max: minMax('Max'),
  Clip,
  Pow,
  Erf: since(9, hostUnary('Erf', {}, erf)),
  Softplus: hostUnary('Softplus', {}, (x) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)))),
  HardSigmoid: hostUnary('HardSigmoid', { alpha: 0.2, beta: 0.5 }, (x, a) => Math.max(0, Math.min(1, a.alpha * x + a.beta))),
  LeakyRelu: hostUnary('LeakyRelu', { alpha: 0.01 }, (x, a) => (x >= 0 ? x : a.alpha * x)),
  Elu: hostUnary('Elu', { alpha: 1 }, (x, a) => (x > 0 ? x : a.alpha * (Math.exp(x) - 1))),
  ConstantOfShape: since(9, ConstantOfShape),
  Expand: since(8, Expand),
  Tile,
  Range: since(11, Range),
  Pad,
};


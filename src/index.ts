/**
 * recur: recurrent neural networks for TypeScript. The side-effect-free public entry point; the
 * CLI and the browser playground import from here and never the other way round.
 */
export * from './tensor/tensor.ts';
export * from './tensor/rng.ts';
export * from './tensor/init.ts';
export type { Backend, Storage, DType, Data, UnaryOp, BinaryOp, Activation, CellStep } from './backend/interface.ts';
export { BackendError } from './backend/interface.ts';
export { getBackend, setBackend, registerBackend, listBackends } from './backend/registry.ts';
export { JsBackend } from './backend/js.ts';
export { backward, noGrad, isGradEnabled } from './autograd/tape.ts';
export * from './autograd/ops/elementwise.ts';
export * from './autograd/ops/linalg.ts';
export * from './autograd/ops/shape.ts';
export * from './autograd/ops/nn.ts';
export { recurrentLayer, checkLengths, type DirectionParams, type RecurrentMode, type RecurrentLayerResult } from './cells/recurrent.ts';
export * from './nn/module.ts';
export * from './nn/layers.ts';
export * from './nn/recurrent.ts';
export { Optimizer, SGD, RMSProp, Adagrad, Adam, AdamW, collectParams, type Params, type OptimizerState, type OptimizerType } from './train/optim.ts';
export * from './train/schedule.ts';
export * from './train/clip.ts';
export * from './train/guard.ts';
export type { Task, BatchSource, StepResult } from './train/task.ts';
export * from './train/trainer.ts';
export * from './train/callbacks.ts';
export * from './train/tbptt.ts';
export * from './train/gradlog.ts';
export * from './infer/sample.ts';
export * from './infer/stream.ts';
export * from './interop/keras.ts';
export * from './autograd/ops/conv.ts';
export * from './nn/conv.ts';
export * from './nn/attention.ts';
export * from './infer/beam.ts';
export { loadWasmBackend, createWasmBackend, wasmSupport, WasmBackend, type WasmBackendOptions } from './backend/wasm/index.ts';

/**
 * recurjs: recurrent neural networks for TypeScript. The core entry point: side-effect free, and
 * nothing in its module graph imports a node: module, so it bundles for browsers as it is.
 *
 * The names below are the public API, listed on purpose (api/recurjs.api.md records them; a change
 * shows in review). Other entry points: recurjs/node (files by path), recurjs/wasm (the WebAssembly
 * backend), recurjs/onnx, recurjs/interop (Keras), recurjs/models (task models), recurjs/data.
 */
export { VERSION } from './version.ts';

// tensors, random numbers, initialisation
export { Tensor, tensor, zeros, ones, full, randn, uniform, shapeStr, checkShape, type Shape, type TensorOptions } from './tensor/tensor.ts';
export { tensorToJSON, tensorFromJSON, type TensorJSON } from './tensor/json.ts';
export * from './tensor/rng.ts';
export { uniform_, normal_, constant_, xavierUniform_, orthogonal_ } from './tensor/init.ts';

// backends
export type { Backend, Storage, DType, Data, UnaryOp, BinaryOp, Activation, CellStep } from './backend/interface.ts';
export { BackendError } from './backend/interface.ts';
export { getBackend, setBackend, registerBackend, listBackends } from './backend/registry.ts';
export { JsBackend } from './backend/js.ts';

// autograd and ops
export { backward, noGrad, isGradEnabled } from './autograd/tape.ts';
export * from './autograd/ops/elementwise.ts';
export * from './autograd/ops/linalg.ts';
export * from './autograd/ops/shape.ts';
export * from './autograd/ops/nn.ts';
export * from './autograd/ops/conv.ts';
export { recurrentLayer, recurrentStack, type DirectionParams, type RecurrentMode, type RecurrentLayerResult } from './cells/recurrent.ts';

// modules
export { Module, StateDictError, type TensorLike, type StateDictInput } from './nn/module.ts';
export * from './nn/layers.ts';
export * from './nn/recurrent.ts';
export * from './nn/conv.ts';
export {
  AdditiveAttention, LuongAttention, makeAttention, lengthMask, type Attention,
  type AttentionMemory, type AttentionOutput, type AdditiveAttentionOptions, type LuongAttentionOptions, type AttentionKind,
} from './nn/attention.ts';

// training
export { Optimizer, SGD, RMSProp, Adagrad, Adam, AdamW, collectParams, type Params, type OptimizerState, type OptimizerType } from './train/optim.ts';
export * from './train/schedule.ts';
export * from './train/clip.ts';
export * from './train/guard.ts';
export { hostWeights, runAsync, runSync, withHostWeights, type HostRead, type Reading } from './train/host-reads.ts';
export { taskRngs, type Task, type BatchSource, type StepResult } from './train/task.ts';
export {
  DataParallelTask, DataParallelError, inProcessShards, combineShards, runShard, seedShard,
  type DataParallelOptions, type ShardRunner, type ShardResult,
} from './train/data-parallel.ts';
export {
  Trainer, TrainerOptionsError,
  type TrainerOptions, type OptimizerName, type OptimizerSpec, type EarlyStoppingOptions, type CheckpointOptions, type StopReason, type FitResult, type FitOptions,
} from './train/trainer.ts';
export {
  LossRecorder, LineProgress,
  type Callback, type StepInfo, type EvalInfo, type EpochInfo, type HookResult, type ProgressStats, type ProgressSink,
} from './train/callbacks.ts';
export { memoryStore, CheckpointError, type RunStore, type TrainingState } from './train/run-store.ts';
export type { MetricsEntry, TrainLogEntry, EvalLogEntry, FitLogEntry, WarningLogEntry } from './train/metrics-log.ts';
export { parseMetricsLog } from './train/metrics-log.ts';
export * from './train/tbptt.ts';
export { measureStepMemory, type StepMemory } from './train/memory.ts';
export { fastestBackend, type FastestBackendOptions, type BackendTrial, type BackendChoice } from './train/backend-choice.ts';
export { GradMonitor, layerNorms, type GradMonitorOptions, type GradMonitorState, type GradWarning, type GradWarningKind } from './train/gradlog.ts';

// inference
export * from './infer/sample.ts';
export * from './infer/stream.ts';
export * from './infer/beam.ts';

// model files as bytes (by path: recurjs/node)
export { encodeModel, decodeModel, asStateDict, moduleTensors, describeModelFile, type ModelFile, type SaveModelOptions } from './io/model.ts';
export { encodeSafetensors, decodeSafetensors, SafetensorsError, type SafeTensor, type SafeDType, type SafeArray, type DecodeOptions, type DecodedSafetensors } from './io/safetensors.ts';
export { DEFAULT_LIMITS, resolveLimits, LimitError, type Limits } from './io/limits.ts';

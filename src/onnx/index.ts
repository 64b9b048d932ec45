/**
 * ONNX interchange: `exportOnnx` (recur model → ONNX bytes; exportNameGen, exportForecaster and
 * the seq2seq encoder / decoder-step exporters for the task models that are not a plain
 * pipeline), `loadOnnx` (ONNX bytes → a model recur runs) and `convertOnnx` (an exported recurrent
 * pipeline → a recur model that trains). Free of Node-only imports; the test-case runner
 * (testcase.ts, in recurjs/node) and the CLI functions (cli.ts) read files and are imported from
 * their own modules.
 */
export { OnnxError, AttrType, DataType, decodeModelProto, encodeModelProto, decodeTensorProto, encodeTensorProto } from './proto.ts';
export type { ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto } from './proto.ts';
export { tensorFromProto, tensorToProto, DEFAULT_MAX_ELEMENTS, type OnnxTensor, type OnnxDType } from './tensor.ts';
export { loadOnnx, OnnxModel, MIN_OPSET, MAX_OPSET, SUPPORTED_OPERATORS, type LoadOnnxOptions, type OnnxInput, type OnnxValueInfo, type FoldingStats, type ShapeArithmeticStats } from './model.ts';
// loadOnnx's `limits` option and the error it throws past one (the shared record, io/limits.ts).
export { LimitError, DEFAULT_LIMITS, resolveLimits, type Limits } from '../io/limits.ts';
export { exportOnnx, buildOnnxModel, referenceForward, charLMExportSpec, classifierExportSpec, feedForwardExportSpec, sequentialExportSpec, EXPORT_OPSET, EXPORT_IR_VERSION, type ExportSpec, type ExportStep } from './export.ts';
export { exportNameGen, buildNameGenModel, exportForecaster, buildForecasterModel, exportSeq2SeqEncoder, buildSeq2SeqEncoderModel, exportSeq2SeqDecoderStep, buildSeq2SeqDecoderStepModel, type TaskExportOptions } from './export.ts';
export { buildModel, modelProto, attribute, type ModelSpec, type NodeSpec, type ValueSpec, type AttrValue } from './builder.ts';
export { convertOnnx, summarize as summarizePipeline, OnnxConvertError, type ConvertedOnnx, type ConvertOnnxOptions } from './convert.ts';
export { PipelineModel, parsePipelineConfig, pipelineConfigSchema, pipelineStepSchema, type PipelineConfig, type PipelineStep, type TokenIds } from './convert-model.ts';

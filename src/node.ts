/**
 * recurjs/node: what needs a file system — model and safetensors files by path, run directories
 * (checkpoints, the metrics log) for the Trainer, data files, Keras folders, ONNX test-case
 * folders. Writes are atomic; reads check the file's kind and size against the limits first.
 * And data-parallel training in worker threads (`workerShards`; the sharding itself is in recurjs).
 */
export { saveModel, loadModelFile, loadModelInto, saveSafetensors, loadSafetensors, readInputFile, InputFileError } from './io/files.ts';
export { writeFileAtomic, writeFileAtomicAsync } from './io/atomic.ts';
export { fileStore, saveCheckpoint, loadCheckpoint, hasCheckpoint, readTrainingState, readMetricsLog, MODEL_FILE, STATE_FILE, BEST_FILE, METRICS_FILE } from './train/checkpoint.ts';
export { loadText, loadCharCorpus, loadLines, loadNumericCSV, loadJSONL, decodeText, type TextEncoding, type ReadTextOptions } from './data/files.ts';
export { saveTask, loadTask, loadPredictor, loadPretrained, pretrainedModels, evaluatePretrained, PRETRAINED_DIR, type Predictor, type PretrainedModel } from './models/files.ts';
export { loadKerasModel } from './interop/keras-file.ts';
export { findTestCases, runTestCase } from './onnx/testcase.ts';
export { workerShards, type WorkerShardsOptions, type ReplicaSpec } from './train/data-parallel-node.ts';

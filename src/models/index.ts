/**
 * recurjs/models: the task models of the four topologies, their registry (build from options and
 * data, rebuild from a model file, predict) and the vanishing-gradient diagnosis. Browser-safe:
 * the built-in data sets are read from their npm packages in Node.js only (recurjs/data), and task
 * files by path are in recurjs/node (saveTask, loadTask).
 */
export * from './registry.ts';
// task-options.ts minus its schema machinery (optionSet, parseConfig): their signatures name Zod's
// types, which the published declarations keep out (see train/options.ts, "Types").
export {
  TaskRegistryError, TaskConfigError, trainDefaults, checkModelTensors, checkVocabSize, linearShapes, embeddingShapes, conv2dShapes, recurrentShapes, cellShapes,
  type Topology, type TrainDefaults, type BuiltTask, type TaskSpec, type OptionSet, type ParamShapes,
} from './task-options.ts';
export * from './common.ts';
export * from './metrics.ts';
export * from './classifier.ts';
export * from './feedforward.ts';
// ngram.ts minus NGRAM_FIELDS (its type names Zod's, kept out as above)
export {
  NgramLogReg, NgramTask, charNgrams, buildNgram, loadNgram, checkNgramConfig, ngramTensorShapes, MAX_NGRAM_ORDER, NGRAM_START, NGRAM_END,
  type NgramConfig, type NgramBatch, type NgramBuildOptions,
} from './ngram.ts';
export * from './namegen.ts';
export * from './charlm.ts';
export * from './lm.ts';
export * from './forecaster.ts';
export * from './captioner.ts';
export * from './shapes.ts';
export * from './seq2seq.ts';
// The CMUdict loader lives in data/ (recurjs/data); still exported here, where seq2seq users found it.
export { cmudictEntries, loadCmudict, type CmudictOptions, type G2PData, type G2PVocab, type G2PWord } from '../data/cmudict.ts';
export * from './diagnose.ts';
export * from './inspect.ts';
export * from './stream.ts';

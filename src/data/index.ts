/**
 * recurjs/data: tokenizers, vocabularies, padding with lengths, batching, parsers for text, CSV and
 * JSONL, and the built-in data sets (read from their npm packages, in Node.js only). Files by path:
 * recurjs/node.
 */
export * from './tokenize.ts';
export * from './vocab.ts';
export * from './batch.ts';
export * from './text.ts';
export * from './loaders.ts';
export * from './datasets.ts';
export * from './cmudict.ts';

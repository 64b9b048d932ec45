/**
 * File input/output (Node.js: uses node:fs). Kept out of the main entry point so the core stays
 * free of Node-only imports.
 */
export * from './safetensors.ts';
export * from './model.ts';
export { writeFileAtomic, writeFileAtomicAsync } from './atomic.ts';
export * from '../train/checkpoint.ts';
export * from '../train/metrics-log.ts';

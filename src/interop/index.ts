/**
 * recurjs/interop: Keras / TF.js layers models from their model.json and weight bytes (a folder by
 * path: `loadKerasModel` in recurjs/node).
 */
export * from './keras.ts';

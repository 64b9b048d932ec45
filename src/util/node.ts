/**
 * A Node.js built-in module taken at the call through `process.getBuiltinModule` (Node ≥ 20.16),
 * not by an import: the modules that read files or start threads under Node (io/read.ts, the data
 * sets, the wasm platform) stay in module graphs that bundle for browsers, where this returns
 * undefined and the caller says what is missing.
 */
export function nodeBuiltin<T>(id: string): T | undefined {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  return p?.getBuiltinModule?.(id) as T | undefined;
}

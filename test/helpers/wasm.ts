/** The wasm backend for a test, or the test skipped with the reason it did not load. */
import type { TestContext } from 'node:test';
import type { WasmBackend } from '../../src/backend/wasm/index.ts';

export async function wasmBackendOrSkip(t: TestContext): Promise<WasmBackend | undefined> {
  try {
    const { createWasmBackend } = await import('../../src/backend/wasm/index.ts');
    return await createWasmBackend();
  } catch (e) {
    t.skip(`wasm backend unavailable: ${(e as Error).message}`);
    return undefined;
  }
}

/**
 * The Node.js side of platform.ts: files through node:fs, threads through node:worker_threads
 * (eval'd source, so no worker file has to be resolved next to a transpiled module), and relaxed
 * SIMD through the V8 flag that Node 20 still needs. Imported dynamically, only under Node.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';

import type { Platform, WeakRegistry } from './platform.ts';

let relaxedFlagSet = false;

interface SyncRegistry<T> extends FinalizationRegistry<T> {
  cleanupSome?: () => void;
}

type GcFn = () => void;
let syncSupport: { Registry: new <T>(cb: (held: T) => void) => SyncRegistry<T>; gc: GcFn } | null | undefined;

/**
 * A FinalizationRegistry with cleanupSome, and a gc function, both taken from a fresh context
 * created after switching on the V8 flags that define them (the main context is left unchanged).
 * Only on V8 11 (Node 20/21), where these flags are known to exist: elsewhere an unknown flag would
 * print a warning, and the plain registry is used.
 */
function syncRegistry(): typeof syncSupport {
  if (syncSupport !== undefined) return syncSupport;
  syncSupport = null;
  if (process.versions.v8.split('.')[0] !== '11') return syncSupport;
  try {
    setFlagsFromString('--harmony-weak-refs-with-cleanup-some');
    setFlagsFromString('--expose-gc');
    const ctx = runInNewContext('({ Registry: FinalizationRegistry, gc: typeof gc === "function" ? gc : null })') as { Registry: new <T>(cb: (h: T) => void) => SyncRegistry<T>; gc: GcFn | null };
    if (ctx.gc && typeof ctx.Registry.prototype.cleanupSome === 'function') syncSupport = { Registry: ctx.Registry, gc: ctx.gc };
  } catch {
    syncSupport = null;
  }
  return syncSupport;
}

export function nodePlatform(): Platform {
  return {
    name: 'node',
    async readAsset(url) {
      return new Uint8Array(await readFile(url.protocol === 'file:' ? fileURLToPath(url) : url.href));
    },
    cores: () => Math.max(1, availableParallelism()),
    canBlock: true,
    sharedMemory: typeof SharedArrayBuffer !== 'undefined',
    enableRelaxedSimd() {
      // Before any relaxed module is compiled; harmless where the feature already ships.
      if (!relaxedFlagSet) {
        setFlagsFromString('--experimental-wasm-relaxed-simd');
        relaxedFlagSet = true;
      }
    },
    spawnWorker(body) {
      const prelude = 'const { parentPort } = require("node:worker_threads");\nconst onMsg = (cb) => parentPort.on("message", cb);\nconst send = (m) => parentPort.postMessage(m);\n';
      const w = new Worker(prelude + body, { eval: true });
      return {
        post: (m) => w.postMessage(m),
        onMessage: (cb) => { w.on('message', cb); },
        onError: (cb) => { w.on('error', cb); },
        terminate: () => { void w.terminate(); },
        // once started, idle workers must never keep the process alive
        unref: () => { w.unref(); },
      };
    },
    weakRegistry<T>(cb: (held: T) => void): WeakRegistry<T> {
      const sync = syncRegistry();
      if (!sync) {
        const reg = new FinalizationRegistry<T>(cb);
        return { register: (t, h) => reg.register(t, h) };
      }
      const reg = new sync.Registry<T>(cb);
      const drain = (): void => reg.cleanupSome!();
      return {
        register: (t, h) => reg.register(t, h),
        drain,
        collect: () => {
          sync.gc();
          drain();
        },
      };
    },
  };
}

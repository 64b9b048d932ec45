/**
 * The Node.js side of platform.ts: files through node:fs, threads through node:worker_threads
 * (eval'd source, so no worker file has to be resolved next to a transpiled module), and relaxed
 * SIMD through the V8 flag that Node 20 still needs.
 *
 * The node: modules come from `process.getBuiltinModule` (Node ≥ 20.16), not from import
 * statements: this module is part of the wasm backend's module graph in every environment, and a
 * browser bundle of it must not meet a node: import. `nodePlatform()` is called only under Node.
 */
import type { Platform, WeakRegistry } from './platform.ts';
import { nodeBuiltin } from '../../util/node.ts';

type Builtins = {
  readFile: typeof import('node:fs/promises').readFile;
  availableParallelism: typeof import('node:os').availableParallelism;
  setFlagsFromString: typeof import('node:v8').setFlagsFromString;
  Worker: typeof import('node:worker_threads').Worker;
  fileURLToPath: typeof import('node:url').fileURLToPath;
  runInNewContext: typeof import('node:vm').runInNewContext;
};

function builtins(): Builtins {
  const m = <T>(id: string): T => {
    const mod = nodeBuiltin<T>(id);
    if (!mod) throw new Error('the wasm backend under Node.js needs Node ≥ 20.16 (process.getBuiltinModule)');
    return mod;
  };
  return {
    readFile: m<typeof import('node:fs/promises')>('node:fs/promises').readFile,
    availableParallelism: m<typeof import('node:os')>('node:os').availableParallelism,
    setFlagsFromString: m<typeof import('node:v8')>('node:v8').setFlagsFromString,
    Worker: m<typeof import('node:worker_threads')>('node:worker_threads').Worker,
    fileURLToPath: m<typeof import('node:url')>('node:url').fileURLToPath,
    runInNewContext: m<typeof import('node:vm')>('node:vm').runInNewContext,
  };
}


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
  const { setFlagsFromString, runInNewContext } = builtins();
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
  const { readFile, fileURLToPath, availableParallelism, setFlagsFromString, Worker } = builtins();
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

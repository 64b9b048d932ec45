/**
 * What the wasm backend needs from its host, behind one small interface so the core (loader,
 * backend, thread pool) has no Node-only imports: reading the built .wasm files, the core count,
 * whether the main thread may block, switching on relaxed SIMD where an engine flag gates it, and
 * starting a worker from source text. `platform-node.ts` implements it with node: modules (taken
 * from process.getBuiltinModule, only under Node); the browser version below uses fetch and Web
 * Workers.
 */
import { nodePlatform } from './platform-node.ts';

/** A started worker: messages both ways, and a way to stop it. */
export interface WorkerHandle {
  post(message: unknown): void;
  onMessage(cb: (message: unknown) => void): void;
  onError(cb: (error: unknown) => void): void;
  terminate(): void;
  /** Stop this worker from keeping the process alive (Node); a no-op in browsers. */
  unref(): void;
}

/**
 * FinalizationRegistry plus, where the engine allows, synchronous reclamation: `drain` runs the
 * callbacks of objects the GC has already collected (FinalizationRegistry#cleanupSome), and
 * `collect` runs a full GC first. Without them, callbacks only run when the event loop turns, so a
 * loop that never yields would never get memory back.
 */
export interface WeakRegistry<T> {
  register(target: object, held: T): void;
  drain?: () => void;
  /** A full GC, then drain. */
  collect?: () => void;
}

export interface Platform {
  readonly name: 'node' | 'browser';
  /** Bytes of a file given by URL (a sibling of this module). */
  readAsset(url: URL): Promise<Uint8Array<ArrayBuffer>>;
  /** Default number of threads. */
  cores(): number;
  /** Whether this (the calling) thread may block in Atomics.wait — false on a browser main thread. */
  readonly canBlock: boolean;
  /** Whether SharedArrayBuffer can be used (browsers need cross-origin isolation). */
  readonly sharedMemory: boolean;
  /** Best effort: make the engine accept relaxed-SIMD modules (Node 20 needs a V8 flag). */
  enableRelaxedSimd(): void;
  /**
   * Start a worker running `body`, a classic script that may use two functions the platform
   * defines in front of it: `onMsg(cb)` (cb gets each message's data) and `send(message)`.
   */
  spawnWorker(body: string): WorkerHandle;
  weakRegistry<T>(cb: (held: T) => void): WeakRegistry<T>;
}

export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

/** The platform of the current JS environment. */
export async function currentPlatform(): Promise<Platform> {
  if (isNode()) return nodePlatform();
  return browserPlatform();
}

interface WebWorkerLike {
  postMessage(m: unknown): void;
  addEventListener(type: string, cb: (e: { data?: unknown; error?: unknown; message?: string }) => void): void;
  terminate(): void;
}

function browserPlatform(): Platform {
  const g = globalThis as unknown as {
    crossOriginIsolated?: boolean;
    navigator?: { hardwareConcurrency?: number };
    document?: unknown;
    Worker?: new (url: string) => WebWorkerLike;
    Blob: typeof Blob;
    URL: typeof URL;
  };
  const isWindow = typeof g.document !== 'undefined';
  return {
    name: 'browser',
    async readAsset(url) {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`cannot fetch ${url.href}: HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    },
    cores: () => Math.max(1, g.navigator?.hardwareConcurrency ?? 1),
    canBlock: !isWindow,
    sharedMemory: typeof SharedArrayBuffer !== 'undefined' && g.crossOriginIsolated !== false,
    enableRelaxedSimd() {
      // browsers either ship relaxed SIMD (Chrome ≥ 114) or do not; nothing to switch on
    },
    spawnWorker(body) {
      if (!g.Worker) throw new Error('Web Workers are not available here');
      const prelude = 'const onMsg = (cb) => self.addEventListener("message", (e) => cb(e.data));\nconst send = (m) => self.postMessage(m);\n';
      const url = g.URL.createObjectURL(new g.Blob([prelude + body], { type: 'text/javascript' }));
      const w = new g.Worker(url);
      return {
        post: (m) => w.postMessage(m),
        onMessage: (cb) => w.addEventListener('message', (e) => cb(e.data)),
        onError: (cb) => w.addEventListener('error', (e) => cb(e.error ?? new Error(e.message ?? 'worker error'))),
        terminate: () => {
          w.terminate();
          g.URL.revokeObjectURL(url);
        },
        unref: () => {},
      };
    },
    weakRegistry<T>(cb: (held: T) => void): WeakRegistry<T> {
      const reg = new FinalizationRegistry<T>(cb);
      return { register: (t, h) => reg.register(t, h) };
    },
  };
}

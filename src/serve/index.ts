/**
 * recurjs/serve (Node.js): the HTTP server of `recur serve` as a library — task models behind a
 * JSON API with batched stream steps, stream state in memory or Redis, Prometheus metrics.
 */
export { createServer, listen, ServeConfigError, type RecurServer, type ServerOptions, type ServedModelInput, type Listening } from './server.ts';
export { loadServedModels, parseModelArg } from './models.ts';
export { MemoryStore, RedisStore, StoreUnavailableError, redactUrl, type StreamStore, type StreamRecord, type Commit, type CommitResult, type RedisStoreOptions } from './store.ts';
export { ServeMetrics } from './metrics.ts';

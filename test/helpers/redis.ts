/**
 * A real Redis server for the tests: Debian's `redis-server`, started on a free loopback port in a
 * temporary folder, with nothing persisted. CI installs the package (.ci/run); a developer machine
 * without it skips the Redis tests with that reason, while under CI (CI=true) a missing server is a
 * failure, so a green CI always means the tests ran against Redis.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BINARY = process.env.REDIS_SERVER ?? 'redis-server';

/** Whether a redis-server binary runs here. */
export const redisInstalled: boolean = spawnSync(BINARY, ['--version'], { stdio: 'ignore' }).status === 0;

/** For `test(name, { skip: redisSkip }, …)`: a reason to skip only off CI when Redis is missing. */
export const redisSkip: string | false =
  redisInstalled || process.env.CI ? false : "redis-server is not installed (Debian: apt-get install redis-server)";

/** A free TCP port on 127.0.0.1 (asked of the OS, then released for the server to take). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  /** Stops the server with SIGKILL (as a crash would) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing is persisted). */
  restart(): Promise<void>;
  /** Stops it for good and removes its folder. */
  stop(): Promise<void>;
}

/** Starts redis-server on a free loopback port and resolves once it accepts connections. */
export async function startRedis(): Promise<RedisServer> {
  if (!redisInstalled) throw new Error(`${BINARY} is not installed (Debian: apt-get install redis-server)`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'recur-redis-'));
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'];
    const c = spawn(BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    let err = '';
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<never>((_, reject) =>
      c.once('exit', (code) => reject(new Error(`redis-server exited (${code}) while starting: ${err}`))));
    exited.catch(() => {}); // only an exit before the port opens is an error
    await Promise.race([waitForPort(port, 10_000), exited]);
  };

  const kill = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    await new Promise<void>((resolve) => { c.once('exit', () => resolve()); c.kill('SIGKILL'); });
  };

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: launch,
    stop: async () => { await kill(); rmSync(dir, { recursive: true, force: true }); },
  };
}

/** Resolves when something accepts TCP connections on 127.0.0.1:port. */
async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

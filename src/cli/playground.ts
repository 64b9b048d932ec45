/**
 * `recur playground`: serve the built browser playground (dist/web/, made by `npm run build:web`
 * and shipped in the npm package) on localhost, with the headers that make the page cross-origin
 * isolated, so that the wasm backend can share its memory with Web Workers and use threads.
 *
 * `servePlayground` is the static file server, on node:http. Why not a package (sirv,
 * serve-handler): what this server must do beyond reading files is most of its code — refuse a
 * path that leaves the root through `..`, an encoded separator or a symlink (sirv follows
 * symlinks), send COOP/COEP/CORP on every response, give the model files' extensions a type,
 * answer 405 to other methods — and a runtime dependency would ship to every user of the library,
 * browser-only ones included, for one command.
 *
 * What it promises:
 *   - GET and HEAD only (405 with `Allow` otherwise); files under `root` only: a path with a NUL
 *     byte or a malformed %-escape is 400; a `..` or dot-file segment, a backslash, a symlink that
 *     leads out of the root, anything not a regular file is 404;
 *   - a folder's index.html for the folder (`/` → /index.html), a folder without the trailing
 *     slash redirected to it (relative URLs in the page then resolve inside the folder);
 *   - the Content-Type of each kind of file the site has (application/wasm for the kernels, which
 *     `WebAssembly.instantiateStreaming` requires), `X-Content-Type-Options: nosniff`;
 *   - `Cache-Control: no-cache` with an ETag: the browser revalidates every file (304 when
 *     unchanged), so a rebuilt site is never mixed with a cached old one;
 *   - when `isolated` (the default): `Cross-Origin-Opener-Policy: same-origin`,
 *     `Cross-Origin-Embedder-Policy: require-corp` and `Cross-Origin-Resource-Policy: same-origin`
 *     on every response. A browser makes a page cross-origin isolated only in a secure context:
 *     http://127.0.0.1 and http://localhost are one, a LAN address over plain http is not.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { CliError, flagLines, flagSpec, HELP_FLAG, OptionReader, parseOrHelp, UsageError, type Flag } from './args.ts';
import { listenError, untilStopped } from './listen.ts';

/** The port `recur playground` listens on unless told otherwise (5173/4173 are Vite's dev and preview servers). */
export const PLAYGROUND_PORT = 5190;

/** The headers that make a page cross-origin isolated (docs/hosting.md shows them for common hosts). */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Content types by extension; anything else is served as application/octet-stream. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  // model files: bytes for the page to parse, never something the browser should render
  '.safetensors': 'application/octet-stream',
  '.onnx': 'application/octet-stream',
};

export function contentType(file: string): string {
  return CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/** The options of `servePlayground` (and, through the command's flags, of `recur playground`). */
const serveOptionsSchema = z.strictObject({
  root: z.string({ error: 'a folder path' }).min(1, { error: 'a folder path' }),
  port: z.int({ error: 'an integer in 0..65535' }).min(0, { error: 'an integer in 0..65535' }).max(65535, { error: 'an integer in 0..65535' }).default(PLAYGROUND_PORT),
  host: z.string({ error: 'a host name or address' }).min(1, { error: 'a host name or address' }).default('127.0.0.1'),
  isolated: z.boolean({ error: 'true or false' }).default(true),
});
export type ServeOptions = z.input<typeof serveOptionsSchema>;

export interface Served {
  /** Where the site is, e.g. http://127.0.0.1:5190/ (a wildcard host is shown as localhost). */
  url: string;
  /** The port listened on (the one the system chose for port 0). */
  port: number;
  /** Stop listening and drop open connections. */
  close(): Promise<void>;
}

function parseServeOptions(options: unknown): z.output<typeof serveOptionsSchema> {
  const r = serveOptionsSchema.safeParse(options);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    throw new TypeError(`servePlayground: unknown option '${issue.keys[0]}' (known: ${Object.keys(serveOptionsSchema.shape).join(', ')})`);
  }
  const key = issue.path.join('.');
  const got = (options as Record<string, unknown> | null)?.[key];
  throw new TypeError(`servePlayground: option '${key}' must be ${issue.message}, got ${JSON.stringify(got) ?? String(got)}`);
}

/** `url` of a request → the file to serve, or the status that refuses it. */
function resolveRequest(root: string, url: string): { file: string; stat: Stats } | { status: 301; location: string } | { status: 400 | 404 } {
  // origin-form only ("/path?query"): an absolute-form or '*' target is no file of this site
  if (!url.startsWith('/')) return { status: 400 };
  const rawPath = url.split(/[?#]/, 1)[0]!;
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return { status: 400 };
  }
  if (path.includes('\0')) return { status: 400 };
  const segments = path.split('/').filter((s) => s !== '');
  // '..' would leave the root; dot-files (.git, .env) are never part of a built site; a backslash
  // is a separator on Windows and no name the build writes
  if (segments.some((s) => s.startsWith('.') || s.includes('\\'))) return { status: 404 };
  let found = resolveInside(root, join(root, ...segments));
  if (found?.stat.isDirectory()) {
    // the Location is rebuilt from the checked segments: the raw path could be '//other.host'
    if (!rawPath.endsWith('/')) return { status: 301, location: `/${segments.map(encodeURIComponent).join('/')}/${url.slice(rawPath.length)}` };
    found = resolveInside(root, join(found.file, 'index.html'));
  }
  if (!found?.stat.isFile()) return { status: 404 };
  return found;
}

/** Whether `file` (a real path) is `root` or below it. */
function inside(root: string, file: string): boolean {
  const rel = relative(root, file);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * What `file` really is, when that lies inside root: realpath, since a symlink inside the root may
 * point anywhere and only what it resolves to counts. null when it does not exist or lies outside.
 */
function resolveInside(root: string, file: string): { file: string; stat: Stats } | null {
  try {
    const real = realpathSync(file);
    return inside(root, real) ? { file: real, stat: statSync(real) } : null;
  } catch {
    return null;
  }
}

/**
 * Serve the files of `root` over HTTP until `close()`. Resolves once listening; rejects with the
 * listen error (`code` EADDRINUSE for a port in use, EACCES for a privileged one).
 */
export async function servePlayground(options: ServeOptions): Promise<Served> {
  const { root: rootArg, port, host, isolated } = parseServeOptions(options);
  let root: string;
  try {
    root = realpathSync(resolve(rootArg));
  } catch {
    throw new TypeError(`servePlayground: the root folder '${rootArg}' does not exist`);
  }
  if (!statSync(root).isDirectory()) throw new TypeError(`servePlayground: the root '${rootArg}' is not a folder`);
  const common: Record<string, string> = { 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', ...(isolated ? ISOLATION_HEADERS : {}) };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const end = (status: number, extra: Record<string, string> = {}): void => {
      const body = `${status} ${STATUS_CODES[status] ?? ''}\n`;
      res.writeHead(status, { ...common, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), ...extra });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return end(405, { Allow: 'GET, HEAD' });
    const found = resolveRequest(root, req.url ?? '');
    if ('status' in found) return found.status === 301 ? end(301, { Location: found.location }) : end(found.status);
    const { file, stat } = found;
    const etag = `W/"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
    const headers = { ...common, 'Content-Type': contentType(file), ETag: etag, 'Last-Modified': stat.mtime.toUTCString() };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers).end();
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': String(stat.size) });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  };

  const server = createServer(handle);
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${actual}/`,
    port: actual,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        // keep-alive connections of a browser would otherwise hold close() open
        server.closeAllConnections();
      }),
  };
}

// ---- the command -------------------------------------------------------------------------------

const PLAYGROUND_FLAGS: Record<string, Flag> = {
  port: { type: 'string', value: 'N', help: `Port to listen on (default ${PLAYGROUND_PORT}; 0 picks a free one)` },
  host: { type: 'string', value: 'H', help: 'Address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)' },
  'no-isolation': { type: 'boolean', help: 'Send no COOP/COEP/CORP headers (the page then runs on one thread)' },
  root: { type: 'string', value: 'DIR', help: 'Serve this folder (a built site with an index.html) instead of the playground' },
  help: HELP_FLAG,
};

export const PLAYGROUND_HELP = `Usage:
  recur playground [options]

Serves the browser playground (recurrent networks training live in the page, on the wasm
backend) on this machine, prints its URL and runs until Ctrl-C.

The site is the one built into the package (dist/web/). In a clone of the repository with its
dev dependencies installed, it is built first (npm run build:web) when it is missing or older
than its sources.

Every response carries the COOP/COEP headers that make the page cross-origin isolated, so the wasm
backend can share its memory with Web Workers and train on several threads; --no-isolation leaves
them out and the page runs on one thread. Browsers isolate a page only in a secure context:
http://127.0.0.1 and http://localhost are one, another machine's address over plain http is not
(serve it over HTTPS for that; docs/hosting.md in the repository shows the headers for hosts).

Options:
${flagLines(PLAYGROUND_FLAGS, 18)}
Exit codes: 0 stopped with Ctrl-C, 1 the site is missing or the port cannot be used, 2 bad
command line.
`;


/** The package's root folder: two levels above this module (src/cli/ in a clone, dist/cli/ when installed). */
function packageRoot(): string {
  return realpathSync(fileURLToPath(new URL('../../', import.meta.url)));
}

/** A clone with the playground's sources and Vite installed: the site can be (re)built here. */
function canBuild(pkgRoot: string): boolean {
  if (!existsSync(join(pkgRoot, 'web', 'vite.config.ts'))) return false;
  for (let d = pkgRoot; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules', 'vite', 'package.json'))) return true;
    if (dirname(d) === d) return false;
  }
}

/** The newest modification time of the files under `dir` (node_modules and dot-folders left out); 0 if none. */
function newestMtime(dir: string): number {
  let newest = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    const s = statSync(p);
    newest = Math.max(newest, s.isDirectory() ? newestMtime(p) : s.mtimeMs);
  }
  return newest;
}

/**
 * The built site to serve: dist/web of this package. In a clone that can build it, (re)built
 * first when missing or older than its sources (web/, src/ — the page bundles the library — and
 * package.json); anywhere else a missing site is an error that says how to make it.
 */
function findSite(): string {
  const pkgRoot = packageRoot();
  const site = join(pkgRoot, 'dist', 'web');
  const index = join(site, 'index.html');
  const built = existsSync(index) ? statSync(index).mtimeMs : -1;
  if (canBuild(pkgRoot)) {
    const inputs = Math.max(newestMtime(join(pkgRoot, 'web')), newestMtime(join(pkgRoot, 'src')), statSync(join(pkgRoot, 'package.json')).mtimeMs);
    if (built < inputs) {
      process.stderr.write(`${built < 0 ? 'Building' : 'Rebuilding'} the playground (npm run build:web) ...\n`);
      // the build's own output goes to stderr: stdout carries only what this command reports
      const r = spawnSync('npm', ['run', 'build:web'], { cwd: pkgRoot, stdio: ['ignore', 2, 2], shell: process.platform === 'win32' });
      if (r.error) throw new CliError(`could not run 'npm run build:web' in ${pkgRoot}: ${r.error.message}`);
      if (r.status !== 0) throw new CliError(`'npm run build:web' failed (exit ${r.status ?? r.signal}); its output is above`);
      if (!existsSync(index)) throw new CliError(`'npm run build:web' wrote no ${index}`);
    }
    return site;
  }
  if (built < 0) {
    throw new CliError(`the built playground is missing (no ${index}). In a clone of the repository, run 'npm install' ` +
      `and 'npm run build:web' (then 'recur playground' again), or serve a built site with --root DIR`);
  }
  return site;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Run `recur playground` with its arguments (after the command name); resolves to the exit code once stopped. */
export async function playgroundCommand(argv: string[]): Promise<number> {
  const parsed = parseOrHelp('recur playground', argv, flagSpec(PLAYGROUND_FLAGS), 0, PLAYGROUND_HELP);
  if (!parsed) return 0;
  const { values } = parsed;
  const r = new OptionReader('recur playground', values);
  const port = r.int('port', 0);
  if (port !== undefined && port > 65535) throw new UsageError(`--port must be an integer in 0..65535, got '${r.string('port')}'`);
  const host = r.string('host');
  if (host !== undefined && host.trim() === '') throw new UsageError('--host needs an address, got an empty one');
  const rootArg = r.string('root');
  let root: string;
  if (rootArg !== undefined) {
    root = resolve(rootArg);
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new CliError(`--root: no folder '${rootArg}'`);
    if (!existsSync(join(root, 'index.html'))) throw new CliError(`--root: no index.html in '${rootArg}' (--root takes a built site, e.g. the folder 'vite build' writes)`);
  } else {
    root = findSite();
  }
  const options = parseServeOptions({ root, port, host, isolated: !r.flag('no-isolation') });

  let served: Served;
  try {
    served = await servePlayground(options);
  } catch (e) {
    throw listenError(e, options.port, options.host);
  }

  // Ctrl-C (or a SIGTERM) is the normal way out: listen for it before printing the URL
  const stopped = untilStopped('recur playground', () => served.close());

  const lines = [`recur playground: ${served.url}`, `  site: ${root}`];
  if (options.isolated) {
    lines.push('  threads: on (COOP/COEP headers sent: the page is cross-origin isolated, so the wasm backend can use Web Workers)');
    if (!isLoopback(options.host)) {
      lines.push(`  note: from another machine, http://<this machine's address>:${served.port}/ is not a secure context, where browsers isolate no page: ` +
        'there it runs on one thread (serve it over HTTPS for threads; docs/hosting.md)');
    }
  } else {
    lines.push('  threads: off (--no-isolation: the page is not cross-origin isolated and runs on one thread)');
  }
  lines.push('Press Ctrl-C to stop.');
  process.stdout.write(`${lines.join('\n')}\n`);
  return stopped;
}

/**
 * `recur serve MODEL…`: task models behind an HTTP JSON API (src/serve/server.ts), with streams
 * whose state lives in this process (default) or in Redis (--redis URL, for several processes).
 * Flags map one to one onto the server's option schema, which validates them.
 */
import { readInputFile } from '../io/read.ts';
import { fileError } from './format.ts';
import { CliError, OptionReader, parseOrHelp, UsageError, flagLines, flagSpec, HELP_FLAG, type Flag } from './args.ts';
import { listenError, untilStopped } from './listen.ts';
import { createServer, listen, serverOptionsSchema, ServeConfigError, type Listening, type ServerOptions } from '../serve/server.ts';
import { loadServedModels } from '../serve/models.ts';
import { redactUrl, StoreUnavailableError } from '../serve/store.ts';

export const SERVE_PORT = 8080;

/** Each flag and the server option it sets (numbers are read as numbers; the schema checks ranges). */
const SERVE_FLAGS: Record<string, Flag & { option?: keyof ServerOptions; number?: true }> = {
  port: { type: 'string', value: 'N', help: `Port to listen on (default ${SERVE_PORT}; 0 picks a free one)` },
  host: { type: 'string', value: 'H', help: 'Address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)' },
  redis: { type: 'string', value: 'URL', help: 'Keep stream state in Redis (redis://[:password@]host:port[/db]) so that several processes share it; default: in memory', option: 'redis' },
  'redis-prefix': { type: 'string', value: 'P', help: "Prefix of the Redis keys (default 'recur:')", option: 'redisPrefix' },
  'token-file': { type: 'string', value: 'FILE', help: 'Require Authorization: Bearer <the token in FILE> on every request (or set RECUR_SERVE_TOKEN)' },
  'tick-ms': { type: 'string', value: 'MS', help: 'How long a stream step waits to share a forward pass with others (default 2)', option: 'tickMs', number: true },
  'max-batch': { type: 'string', value: 'N', help: 'Most stream steps computed in one tick (default 256)', option: 'maxBatch', number: true },
  'max-body': { type: 'string', value: 'BYTES', help: 'Largest request body (default 65536; larger: 413)', option: 'maxBodyBytes', number: true },
  'max-input': { type: 'string', value: 'N', help: 'Longest text of a step or a predict input, in characters (default 1024)', option: 'maxInputLength', number: true },
  'max-predict': { type: 'string', value: 'N', help: 'Most inputs of one predict request (default 64)', option: 'maxPredictInputs', number: true },
  ttl: { type: 'string', value: 'SECONDS', help: 'A stream expires this long after its last step (default 3600)', option: 'ttlSeconds', number: true },
  top: { type: 'string', value: 'K', help: 'Next characters a character-LM step returns (default 5)', option: 'top', number: true },
  help: HELP_FLAG,
};

export const SERVE_HELP = `Usage:
  recur serve MODEL... [options]

Serves task models (files written by 'recur train TASK') over HTTP until Ctrl-C. Each MODEL is a
file, served under its name without the extension, or NAME=FILE. Requests and replies are JSON:

  GET  /healthz, /readyz, /metrics (Prometheus), /models
  POST /predict              {"model": NAME, "inputs": ["..."]}  → {"outputs": ["..."]}
  POST /streams              {"model": NAME}                     → {"id": ID, "version": 0}
  POST /streams/ID/step      {"input": ..., "version": N}        → {"version": N+1, "output": ...}
  POST /streams/ID/reset     DELETE /streams/ID                  GET /streams/ID

A stream keeps a recurrent state between steps (charlm: text in, the next character's
distribution out; forecast: a row in, the next row's forecast out). Steps arriving together are
computed in one forward pass. Without --redis the state lives in this process; with it any
process sharing the Redis continues any stream. docs/deploying.md in the repository says how to
run several behind a load balancer and what is guaranteed.

Options:
${flagLines(SERVE_FLAGS, 22)}
Exit codes: 0 stopped with Ctrl-C or SIGTERM, 1 a model file or Redis cannot be used or the port
is taken, 2 bad command line.
`;

/** Run `recur serve` with its arguments (after the command name); resolves to the exit code once stopped. */
export async function serveCommand(argv: string[]): Promise<number> {
  const parsed = parseOrHelp('recur serve', argv, flagSpec(SERVE_FLAGS), Infinity, SERVE_HELP);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length === 0) throw new UsageError('give at least one model file (recur serve MODEL...)');
  const r = new OptionReader('recur serve', values);
  const port = r.int('port', 0) ?? SERVE_PORT;
  if (port > 65535) throw new UsageError(`--port must be an integer in 0..65535, got '${r.string('port')}'`);
  const host = r.string('host') ?? '127.0.0.1';
  if (host.trim() === '') throw new UsageError('--host needs an address, got an empty one');

  const options: Record<string, unknown> = {};
  for (const [flag, f] of Object.entries(SERVE_FLAGS)) {
    if (!f.option) continue;
    const v = f.number ? r.number(flag) : r.string(flag);
    if (v !== undefined) options[f.option] = v;
  }
  const tokenFile = r.string('token-file');
  const token = tokenFile !== undefined ? readToken(tokenFile) : process.env.RECUR_SERVE_TOKEN;
  if (token !== undefined) options.token = token;
  const checked = serverOptionsSchema.safeParse(options);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    const key = issue.path.join('.');
    const flag = key === 'token' ? (tokenFile !== undefined ? '--token-file' : 'RECUR_SERVE_TOKEN') : `--${Object.entries(SERVE_FLAGS).find(([, f]) => f.option === key)?.[0] ?? key}`;
    throw new UsageError(`${flag} must be ${issue.message}${key === 'token' ? '' : `, got '${String(options[key])}'`}`);
  }

  let models;
  try {
    models = loadServedModels(positionals);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  let listening: Listening;
  try {
    const server = await createServer(models, checked.data);
    try {
      listening = await listen(server, { port, host });
    } catch (e) {
      await server.close();
      throw e;
    }
  } catch (e) {
    if (e instanceof StoreUnavailableError || e instanceof ServeConfigError) throw new CliError(e.message);
    throw listenError(e, port, host);
  }

  const stopped = untilStopped('recur serve', () => listening.close());
  const lines = [
    `recur serve: ${listening.url}`,
    ...models.map((m) => `  model ${m.name}: ${m.task.name}`),
    `  streams: ${checked.data.redis ? `Redis at ${redactUrl(checked.data.redis)}` : 'in memory (this process only)'}`,
    `  auth: ${token !== undefined ? 'bearer token' : 'none'}`,
    'Press Ctrl-C to stop.',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return stopped;
}

function readToken(path: string): string {
  try {
    return new TextDecoder().decode(readInputFile(path, 'token file')).trim();
  } catch (e) {
    throw new CliError(`--token-file: ${fileError(path, e).message}`);
  }
}

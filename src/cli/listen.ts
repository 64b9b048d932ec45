/**
 * What the CLI's two servers (`recur playground`, `recur serve`) share around listening: the
 * errors of taking a port, said as what to do, and Ctrl-C / SIGTERM as the normal way to stop.
 */
import { CliError } from './args.ts';

/** A listen error as a CliError that says what to do, or the error itself when it is no such error. */
export function listenError(e: unknown, port: number, host: string): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  const where = `port ${port} on ${host}`;
  if (code === 'EADDRINUSE') return new CliError(`${where} is in use; choose another with --port N (--port 0 picks a free one)`);
  if (code === 'EACCES') return new CliError(`no permission to listen on ${where}; choose a port above 1023 with --port N`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new CliError(`cannot listen on host '${host}' (${code}); give an address of this machine with --host`);
  return e;
}

/**
 * Resolves to exit code 0 once SIGINT or SIGTERM has come and `close` has finished, after printing
 * `WHO: stopped`. Call it before printing the server's URL: a caller waits for the URL before it
 * may send a signal.
 */
export function untilStopped(who: string, close: () => Promise<void>): Promise<number> {
  return new Promise<number>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void close().then(() => {
        process.stdout.write(`${who}: stopped\n`);
        done(0);
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

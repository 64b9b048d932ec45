/**
 * The models of `recur serve`, from files given at start (never from a request): each argument is
 * `PATH` (served under the file's name without its extension) or `NAME=PATH`. The task comes from
 * the file's config (`recur train TASK` writes it), so any task model file can be served.
 */
import { basename, extname } from 'node:path';
import { loadTaskFile } from '../models/files.ts';
import type { ServedModelInput } from './server.ts';

/** `NAME=PATH` or `PATH` → the name and path (a Windows drive letter is no name). */
export function parseModelArg(arg: string): { name: string; path: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})=(.+)$/.exec(arg);
  if (m && !/^[A-Za-z]$/.test(m[1]!)) return { name: m[1]!, path: m[2]! };
  const name = basename(arg, extname(arg));
  return { name, path: arg };
}

/** Load each model file as its task. */
export function loadServedModels(args: readonly string[]): ServedModelInput[] {
  return args.map((arg) => {
    const { name, path } = parseModelArg(arg);
    return { name, task: loadTaskFile(path).task };
  });
}

/**
 * Option-object checking shared by every layer of the library (ops, modules, training, inference):
 * an unknown key is a TypeError naming it and the known ones. No imports, so anything may use it.
 */
export function checkOptions(where: string, opts: object | undefined, known: readonly string[]): void {
  if (opts === undefined) return;
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${where}: options must be an object`);
  for (const k of Object.keys(opts)) {
    if (!known.includes(k)) throw new TypeError(`${where}: unknown option '${k}' (known: ${known.join(', ')})`);
  }
}

/** A plain object (not null, not an array): what JSON objects and option bags are checked against. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

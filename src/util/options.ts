/**
 * Option-object checking shared by every layer of the library (ops, modules, training, inference):
 * an unknown key is a TypeError naming it and the known ones; the plain-object test; and the one
 * formatter of values for error messages. No imports, so anything may use it.
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

/**
 * A value for an error message, cut to 80 characters (a hostile value may be megabytes long).
 * Numbers print as written (NaN, Infinity; JSON would say null), an object that describes
 * itself (a Tensor, a schedule) by its toString, anything else as JSON. Strings are quoted:
 * `"` (JSON, the default) or `'`, the style of the messages around them.
 */
export function brief(v: unknown, quote: '"' | "'" = '"'): string {
  let s: string;
  try {
    if (typeof v === 'string') s = quote === '"' ? JSON.stringify(v) : `'${v}'`;
    else if (v === null || typeof v !== 'object') s = String(v);
    else if (!Array.isArray(v) && typeof v.toString === 'function' && v.toString !== Object.prototype.toString) s = String(v);
    else s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Object.prototype.toString.call(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * From a Zod issue to a problem that an option set words in its own style. Zod's own messages are
 * generic ("Too small: expected number to be >=1"); recur's name the option, the form expected and
 * the value got. So every leaf schema carries the expected form as its error message, and
 * `problemOf` turns Zod's first issue into a `Problem`: the path, what was expected, what was got
 * (or the unknown key and the known ones, or a rule between options as a whole sentence). The
 * training options (train/options.ts) and the task options and stored configs (models/
 * task-options.ts) word problems from here.
 */
import { z } from 'zod';

export type Path = readonly PropertyKey[];

/** true when A and B have the same keys (a written type and its schema agree). */
export type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;

/** What is wrong with an option set, whatever the words its owner uses for it. */
export type Problem =
  | { kind: 'value'; path: Path; expected: string; got: unknown; outOfRange: boolean }
  | { kind: 'unknownKey'; path: Path; key: string; known: string[] }
  | { kind: 'unknownValue'; path: Path; noun: string; got: unknown; known: string[] }
  | { kind: 'sentence'; path: Path; message: string };

/** The form a problem's value should have had. */
export function expectedOf(p: Problem): string {
  if (p.kind === 'value') return p.expected;
  if (p.kind === 'unknownValue') return `one of: ${p.known.join(', ')}`;
  return p.kind === 'sentence' ? p.message : 'a known key';
}

/** A custom issue whose message is a whole sentence (a rule between options), not a form. */
export function sentence(input: unknown, message: string): z.core.$ZodRawIssue {
  return { code: 'custom', message, input, params: { sentence: true } };
}

export function valueAt(v: unknown, path: Path): unknown {
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** `checkpoint.every`, `callbacks[2]`. */
export function pathText(path: Path): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join('');
}

/**
 * Did this issue, at the root of a union branch, reject the value for its type (the branch is for
 * another kind of value)? Then another branch says better what is wrong. A one-value literal
 * (`false`, `0`) and an instance test reject by type too.
 */
function rejectsType(i: z.core.$ZodIssue, value: unknown): boolean {
  if (i.path.length > 0) return false;
  if (i.code === 'invalid_type') return true;
  if (i.code === 'custom') return i.params?.sentence !== true;
  if (i.code === 'invalid_value') return i.values.length === 1 || !i.values.some((x) => typeof x === typeof value);
  return false;
}

/** The issue to report: an unknown key before a bad value, the shallowest first; into unions. */
function mainIssue(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue {
  const unknown = issues.filter((i) => i.code === 'unrecognized_keys').sort((a, b) => a.path.length - b.path.length);
  return unknown[0] ?? issues[0];
}

export function problemOf(schema: z.ZodType, error: z.ZodError, input: unknown): Problem {
  let issue = mainIssue(error.issues);
  let base: PropertyKey[] = [];
  // A union says "no branch fits"; when the value is of the kind one branch takes, that branch's
  // own issue is the one to report (`checkpoint.every` rather than "checkpoint: invalid input").
  while (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const at = [...base, ...issue.path];
    const value = valueAt(input, at);
    const branch = issue.errors.find((b) => !b.some((i) => rejectsType(i, value)));
    if (!branch) break;
    base = at;
    issue = mainIssue(branch);
  }
  const path = [...base, ...issue.path];
  const got = valueAt(input, path);
  if (issue.code === 'unrecognized_keys') return { kind: 'unknownKey', path, key: issue.keys[0], known: knownKeys(schema, path, input) };
  if (issue.code === 'invalid_union' && 'options' in issue && issue.options) {
    return { kind: 'unknownValue', path, noun: issue.message, got, known: issue.options.map(String) };
  }
  if (issue.code === 'invalid_value' && issue.values.length > 1) return { kind: 'unknownValue', path, noun: issue.message, got, known: issue.values.map(String) };
  if (issue.code === 'custom' && issue.params?.sentence === true) return { kind: 'sentence', path, message: issue.message };
  const outOfRange = issue.code === 'too_small' || issue.code === 'too_big' || (issue.code === 'invalid_type' && issue.expected === 'number' && typeof got === 'number');
  return { kind: 'value', path, expected: issue.message, got, outOfRange };
}

/** The keys of the object schema at `path` (through optional, default, union … wrappers). */
function knownKeys(schema: z.core.$ZodType, path: Path, input: unknown): string[] {
  let s: z.core.$ZodType | undefined = schema;
  let v = input;
  const unwrap = (t: z.core.$ZodType | undefined): z.core.$ZodType | undefined => {
    for (let n = 0; t && n < 20; n++) {
      const def = t._zod.def;
      if ('innerType' in def && def.innerType) t = def.innerType as z.core.$ZodType;
      else if (def.type === 'pipe') t = (def as z.core.$ZodPipeDef).out;
      else if (def.type === 'union') {
        const objects = (def as z.core.$ZodUnionDef).options.map(unwrap).filter((o) => o?._zod.def.type === 'object');
        const disc = (def as { discriminator?: string }).discriminator;
        t = disc === undefined ? objects[0] : objects.find((o) => o?._zod.propValues?.[disc]?.has(valueAt(v, [disc]) as never));
      } else return t;
    }
    return t;
  };
  for (const k of path) {
    s = unwrap(s);
    if (s?._zod.def.type !== 'object') return [];
    s = (s._zod.def as z.core.$ZodObjectDef).shape[String(k)];
    v = valueAt(v, [k]);
  }
  s = unwrap(s);
  return s?._zod.def.type === 'object' ? Object.keys((s._zod.def as z.core.$ZodObjectDef).shape) : [];
}

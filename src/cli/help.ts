/** Usage text for every command, and the flags of those whose usage lives here. */
import { flagLines, HELP_FLAG, type Flag } from './args.ts';
import { DEMO_DEFAULTS, SAMPLE_DEFAULTS } from './defaults.ts';

const D = DEMO_DEFAULTS;

/** Commands whose usage lives here. */
export const OWN_COMMANDS = ['info', 'demo', 'sample', 'help'] as const;
/** Commands implemented (and documented) in their own modules; main loads them on demand. */
export const MODULE_COMMANDS = ['train', 'eval', 'predict', 'g2p', 'plot', 'diagnose', 'export', 'onnx', 'import', 'playground', 'serve', 'score', 'worker'] as const;
export const COMMANDS = [...OWN_COMMANDS, ...MODULE_COMMANDS] as const;
export type OwnCommand = (typeof OWN_COMMANDS)[number];
export type ModuleCommand = (typeof MODULE_COMMANDS)[number];
export type Command = OwnCommand | ModuleCommand;

export const MAIN_HELP = `recur: recurrent neural networks for TypeScript

Usage:
  recur <command> [options]

Commands:
  info MODEL     Show a model file's architecture, parameter count, metadata and tensors
  demo           Train a character-level LSTM on Moby-Dick for a while, then save it
  sample MODEL   Generate text from a character-level model saved by 'recur demo'
  train TASK     Train a task model (recur train --list shows the tasks)
  eval TASK      Score a trained task model on its validation or test data
  predict TASK   Run a trained task model on inputs
  g2p WORD...    Pronounce English words (the grapheme-to-phoneme model that ships with recur)
  plot RUN       Draw a training run's curves as an SVG image
  diagnose       Compare RNN, LSTM and GRU on the adding problem (vanishing gradients)
  export MODEL   Convert a model file to ONNX
  onnx CMD       Run, test or inspect ONNX models (onnx run | test | info)
  import FILE    Convert or inspect an ONNX file, a Keras model.json or a PyTorch state_dict
  playground     Serve the browser playground on localhost (training live in the page)
  serve MODEL    Serve task models over HTTP: predict, and streams with state in memory or Redis
  score MODEL    Score a JSONL file of inputs, in this process or through Redis workers
  worker MODEL   Process the scoring jobs submitted to Redis for a model
  help [CMD]     Show this help, or the help of one command

Options:
  -h, --help     Show help (also 'recur <command> --help')
  -v, --version  Print the version
  --limit KEY=N  Raise (or lower) a resource limit for untrusted files, for any command; may be
                 repeated. Keys: fileBytes, headerBytes, tensors, tensorElements, parameters,
                 layers, hiddenSize, vocab, graphNodes, foldedConstantBytes, sequenceLength
                 (see "Security and limits" in the README)

Exit codes: 0 ok, 1 the command failed, 2 bad command line, 130 interrupted.

Example:
  recur demo --time 60 --out whale.safetensors
  recur info whale.safetensors
  recur sample whale.safetensors --prime "Call me " --length 300
`;

export const INFO_FLAGS: Record<string, Flag> = {
  json: { type: 'boolean', help: 'Print the same as one JSON object' },
  help: HELP_FLAG,
};

export const INFO_HELP = `Usage:
  recur info MODEL [--json]

Reads a model file (safetensors: one written by recur, or a state_dict saved from PyTorch with
safetensors) and prints:
  - the architecture (from the 'recur.config' metadata, when the file has it)
  - the number of parameters (values in all tensors)
  - the metadata keys and values (the vocabulary is summarised by its size)
  - a table of tensors: name, dtype, shape

Options:
${flagLines(INFO_FLAGS, 17)}
A missing or malformed file gives a one-line error and exit code 1.
`;

export const DEMO_FLAGS: Record<string, Flag> = {
  time: { type: 'string', value: 'SECONDS', help: `Training time budget, samples and checks included (default ${D.time})` },
  steps: { type: 'string', value: 'N', help: 'Stop after N training steps (default: no limit)' },
  out: { type: 'string', value: 'FILE', help: `Where to save the model (default ${D.out}); an existing file is\nrefused before training unless --force is given` },
  force: { type: 'boolean', help: 'Replace the --out file if it exists' },
  seed: { type: 'string', value: 'N', help: `Seed for initialisation, batches and sampling (default ${D.seed})` },
  hidden: { type: 'string', value: 'H', help: `LSTM hidden size (default ${D.hidden}; ${D.hiddenJs} on the js backend)` },
  embedding: { type: 'string', value: 'E', help: `Character embedding size (default ${D.embedding})` },
  layers: { type: 'string', value: 'L', help: `Stacked LSTM layers (default ${D.layers})` },
  'seq-len': { type: 'string', value: 'T', help: `Characters per training window (default ${D.seqLen})` },
  batch: { type: 'string', value: 'B', help: `Windows per training step (default ${D.batch})` },
  lr: { type: 'string', value: 'RATE', help: `Adam learning rate (default ${D.lr}; ${D.lrJs} on the js backend)` },
  'sample-every': { type: 'string', value: 'SECS', help: `Seconds between samples and validation checks (default ${D.sampleEvery})` },
  'sample-length': { type: 'string', value: 'N', help: `Characters per sample (default ${D.sampleLength})` },
  temperature: { type: 'string', value: 'T', help: `Sampling temperature (default ${D.temperature})` },
  prime: { type: 'string', value: 'TEXT', help: `Text the samples start from (default ${JSON.stringify(D.prime)})` },
  'val-chars': { type: 'string', value: 'N', help: `Held-out characters used by the periodic checks (default ${D.valChars};\nthe final check uses all of them)` },
  help: HELP_FLAG,
};

export const DEMO_HELP = `Usage:
  recur demo [options]

Trains a character-level language model (Embedding -> LSTM -> Linear) on the text of Moby-Dick,
holding out the last ${Math.round(D.valFraction * 100)}% of the book for validation. Shows progress (a live bar on a terminal,
plain lines otherwise), and every ~${D.sampleEvery} s prints a generated sample and the validation loss
(nats and bits per character). Stops when the time budget or the step limit is reached, then
evaluates on the whole held-out text, prints a last sample and saves the model (architecture and
vocabulary in the file's metadata).

Runs on the WebAssembly backend where it loads, or on a GPU where one trains faster: with the
'webgpu' package installed and a GPU adapter, the first training step is timed on both and the
faster kept. RECUR_BACKEND=wasm|js|webgpu forces one (js: the reference backend).

Ctrl-C stops training early; the model trained so far is still evaluated and saved (exit code 130).
A second Ctrl-C quits at once without saving.

Options:
${flagLines(DEMO_FLAGS, 23)}`;

export const SAMPLE_FLAGS: Record<string, Flag> = {
  prime: { type: 'string', value: 'TEXT', help: `Text to continue (default ${JSON.stringify(D.prime)}); every character must be in\nthe model's vocabulary` },
  length: { type: 'string', value: 'N', help: `Characters to generate (default ${SAMPLE_DEFAULTS.length})` },
  temperature: { type: 'string', value: 'T', help: `Sampling temperature; 0 always takes the most likely character (default ${D.temperature})` },
  'top-k': { type: 'string', value: 'K', help: 'Sample only among the K most likely characters' },
  seed: { type: 'string', value: 'N', help: `Sampling seed (default ${SAMPLE_DEFAULTS.seed})` },
  help: HELP_FLAG,
};

export const SAMPLE_HELP = `Usage:
  recur sample MODEL [options]

Generates text from a character-level model saved by 'recur demo' (architecture 'charlm').

Options:
${flagLines(SAMPLE_FLAGS, 23)}`;

export const HELP_HELP = `Usage:
  recur help [COMMAND]

Shows the list of commands, or the help of one command (${COMMANDS.filter((c) => c !== 'help').join(', ')}).
`;

export function commandHelp(cmd: OwnCommand): string {
  switch (cmd) {
    case 'info':
      return INFO_HELP;
    case 'demo':
      return DEMO_HELP;
    case 'sample':
      return SAMPLE_HELP;
    case 'help':
      return HELP_HELP;
  }
}

/**
 * `recur diagnose`: the adding problem at several lags with a vanilla RNN, an LSTM and a GRU on
 * the same budget; prints a table of the final MSE and of how much gradient reaches the first
 * time step (‖∂L/∂h_1‖ / ‖∂L/∂h_T‖), and writes an SVG plot of ‖∂L/∂h_t‖ against t and of the
 * training curves. See models/diagnose.ts for the method.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DIAGNOSE_CELLS, DIAGNOSE_DEFAULTS, formatDiagnoseTable, renderDiagnoseSvg, runDiagnose, type DiagnoseCell } from '../models/diagnose.ts';

export const DIAGNOSE_HELP = `Usage: recur diagnose [options]

Train a vanilla RNN, an LSTM and a GRU on the adding problem at several lags with the same
budget, and report the final MSE (chance level 0.167) and the norm of dL/dh_t against t.

Options:
  --lags LIST      lags (sequence lengths), comma-separated      (default ${DIAGNOSE_DEFAULTS.lags.join(',')})
  --cells LIST     cells among rnn,lstm,gru                        (default ${DIAGNOSE_DEFAULTS.cells.join(',')})
  --steps N        optimizer steps per cell and lag                (default ${DIAGNOSE_DEFAULTS.steps})
  --batch N        sequences per step                              (default ${DIAGNOSE_DEFAULTS.batchSize})
  --hidden N       hidden size                                     (default ${DIAGNOSE_DEFAULTS.hiddenSize})
  --lr X           Adam learning rate                              (default ${DIAGNOSE_DEFAULTS.lr})
  --clip X         global gradient-norm clip                       (default ${DIAGNOSE_DEFAULTS.clip})
  --forget-bias X  LSTM forget-gate bias at initialisation         (default ${DIAGNOSE_DEFAULTS.forgetBias})
  --seed N         seed for data and initialisation                (default ${DIAGNOSE_DEFAULTS.seed})
  --svg FILE       write the plot here                             (default diagnose.svg; '' for none)
  --json FILE      also write every number (curves included) as JSON
  --quiet          print only the table
  -h, --help       show this help

With the defaults the gated cells escape the chance-level plateau at every lag while the vanilla\nRNN stays there; fewer steps or a smaller hidden size (e.g. --steps 1000 --hidden 16) show the\nLSTM stuck at lag ≥ 100 too, and --forget-bias 3 helps it.
`;

function intList(name: string, s: string): number[] {
  const v = s.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (v.length === 0 || v.some((x) => !Number.isInteger(x) || x < 2)) throw new UsageError(`--${name} must be a comma-separated list of integers ≥ 2, got '${s}'`);
  return v;
}

function posInt(name: string, s: string | undefined, dflt: number): number {
  if (s === undefined) return dflt;
  const v = Number(s);
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${name} must be a positive integer, got '${s}'`);
  return v;
}

function posNum(name: string, s: string | undefined, dflt: number): number {
  if (s === undefined) return dflt;
  const v = Number(s);
  if (!(v > 0) || !Number.isFinite(v)) throw new UsageError(`--${name} must be a number > 0, got '${s}'`);
  return v;
}

function finiteNum(name: string, s: string): number {
  const v = Number(s);
  if (s.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${name} must be a number, got '${s}'`);
  return v;
}

class UsageError extends Error {}

/** Run `recur diagnose` with its arguments (after the command name); resolves to the exit code. */
export async function diagnoseCommand(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        lags: { type: 'string' }, cells: { type: 'string' }, steps: { type: 'string' }, batch: { type: 'string' }, hidden: { type: 'string' },
        lr: { type: 'string' }, clip: { type: 'string' }, 'forget-bias': { type: 'string' }, seed: { type: 'string' }, svg: { type: 'string' }, json: { type: 'string' },
        quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`recur diagnose: ${(e as Error).message}\nRun 'recur diagnose --help' for usage.\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(DIAGNOSE_HELP);
    return 0;
  }
  let opts;
  try {
    const str = (k: string): string | undefined => values[k] as string | undefined;
    const cells = str('cells') === undefined ? DIAGNOSE_DEFAULTS.cells : str('cells')!.split(',').map((c) => c.trim().toLowerCase());
    for (const c of cells) if (!DIAGNOSE_CELLS.includes(c as DiagnoseCell)) throw new UsageError(`--cells: unknown cell '${c}' (known: ${DIAGNOSE_CELLS.join(', ')})`);
    const seed = str('seed') === undefined ? DIAGNOSE_DEFAULTS.seed : Number(str('seed'));
    if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be a non-negative integer, got '${str('seed')}'`);
    opts = {
      lags: str('lags') === undefined ? DIAGNOSE_DEFAULTS.lags : intList('lags', str('lags')!),
      cells: cells as DiagnoseCell[],
      steps: posInt('steps', str('steps'), DIAGNOSE_DEFAULTS.steps),
      batchSize: posInt('batch', str('batch'), DIAGNOSE_DEFAULTS.batchSize),
      hiddenSize: posInt('hidden', str('hidden'), DIAGNOSE_DEFAULTS.hiddenSize),
      lr: posNum('lr', str('lr'), DIAGNOSE_DEFAULTS.lr),
      clip: posNum('clip', str('clip'), DIAGNOSE_DEFAULTS.clip),
      forgetBias: str('forget-bias') === undefined ? DIAGNOSE_DEFAULTS.forgetBias : finiteNum('forget-bias', str('forget-bias')!),
      seed,
    };
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`recur diagnose: ${e.message}\nRun 'recur diagnose --help' for usage.\n`);
      return 2;
    }
    throw e;
  }
  const quiet = values.quiet === true;
  if (!quiet) process.stderr.write(`recur diagnose: adding problem, lags ${opts.lags.join(', ')}; cells ${opts.cells.join(', ')}; ${opts.steps} steps each\n`);
  const result = runDiagnose({ ...opts, log: quiet ? undefined : (s) => process.stderr.write(`  ${s}\n`) });
  process.stdout.write(formatDiagnoseTable(result));
  const svg = values.svg === undefined ? 'diagnose.svg' : (values.svg as string);
  try {
    if (svg !== '') {
      writeFileSync(svg, renderDiagnoseSvg(result));
      if (!quiet) process.stderr.write(`wrote ${svg}\n`);
    }
    if (typeof values.json === 'string' && values.json !== '') {
      writeFileSync(values.json, JSON.stringify(result, null, 1));
      if (!quiet) process.stderr.write(`wrote ${values.json}\n`);
    }
  } catch (e) {
    process.stderr.write(`recur diagnose: cannot write output: ${(e as Error).message}\n`);
    return 1;
  }
  return 0;
}

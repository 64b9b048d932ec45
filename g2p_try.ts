import { loadWasmBackend } from './src/backend/wasm/index.ts';
import { setBackend, Trainer } from './src/index.ts';
import { getTaskSpec } from './src/models/registry.ts';
const useWasm = process.argv[2] === 'wasm';
if (useWasm) { await loadWasmBackend({ threads: 1 }); setBackend('wasm'); }
const spec = getTaskSpec('seq2seq');
const b: any = spec.build({ valSize: 300 });
const t0 = Date.now();
const tr = new Trainer(b.task, { ...b.trainOptions, progress: false, maxSteps: Number(process.argv[3] ?? 30), evalEvery: 100000 });
const r = await tr.fit(b.train);
console.log(useWasm ? 'wasm' : 'js', 'steps', r.step, 'sec', (Date.now() - t0) / 1000, 'loss', r.lastLoss);

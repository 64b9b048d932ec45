/**
 * Writes the model-file seeds of the fuzz corpus (test/fuzz/corpus/model/): one small model per
 * registered task, untrained (epochs are never run), sized to a few kilobytes so that mutations
 * reach the config and vocabulary rather than megabytes of weights.
 *
 *   node --import tsx scripts/make_fuzz_corpus.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeTask, listTasks } from '../src/models/registry.ts';

const SMALL: Record<string, Record<string, unknown>> = {
  'classify-spam': { hiddenSize: 3, embeddingDim: 3, maxVocab: 12, minCount: 50 },
  'classify-names': { hiddenSize: 3, embeddingDim: 3, maxVocab: 12 },
  feedforward: { hiddenSize: 3 },
  namegen: { hiddenSize: 3, embeddingDim: 3, conditionDim: 2 },
  charlm: { hiddenSize: 3, embeddingDim: 3 },
  forecast: { hiddenSize: 3 },
  seq2seq: { embeddingDim: 3, encoderHidden: 3, decoderHidden: 3, attnDim: 3, trainLimit: 50, testSize: 10, valSize: 10 },
  caption: { imageSize: 16, channels1: 2, channels2: 2, embeddingDim: 3, hiddenSize: 3, trainSize: 20, valSize: 5, testSize: 5 },
};

const dir = join(import.meta.dirname, '..', 'test', 'fuzz', 'corpus', 'model');
mkdirSync(dir, { recursive: true });
for (const spec of listTasks()) {
  const { task } = spec.build({ ...(SMALL[spec.name] ?? {}) });
  const bytes = encodeTask(task);
  writeFileSync(join(dir, `${spec.name}.safetensors`), bytes);
  console.log(`${spec.name}: ${bytes.length} bytes`);
}

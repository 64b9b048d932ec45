/** Every fuzz harness, by name. */
import type { Harness } from './harness.ts';
import { harnesses as safetensors } from './safetensors.ts';
import { harnesses as modelConfig } from './model-config.ts';
import { harnesses as onnx } from './onnx.ts';
import { harnesses as keras } from './keras.ts';
import { harnesses as data } from './data.ts';

export const HARNESSES: readonly Harness[] = [...safetensors, ...modelConfig, ...onnx, ...keras, ...data];

export function harnessByName(name: string): Harness {
  const h = HARNESSES.find((x) => x.name === name);
  if (!h) throw new Error(`no fuzz harness '${name}' (known: ${HARNESSES.map((x) => x.name).join(', ')})`);
  return h;
}

export function harnessByFormat(format: string): Harness | undefined {
  return HARNESSES.find((x) => x.format === format);
}

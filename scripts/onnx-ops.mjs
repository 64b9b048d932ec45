#!/usr/bin/env node
// Writes the README's list of the ONNX operators recur runs, from the code (SUPPORTED_OPERATORS in
// src/onnx/model.ts, read from the built dist/), between the markers below. `--check` only compares
// and exits 1 when the README is stale; test/onnx.ops.test.ts runs the same comparison on src/.
//
//   npm run onnx-ops   (or: npm run build && node scripts/onnx-ops.mjs [--check])
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const START = '<!-- onnx-operators:start (written by scripts/onnx-ops.mjs from the code; do not edit) -->';
export const END = '<!-- onnx-operators:end -->';

/** The README section for these operators and opsets. */
export function operatorSection(ops, minOpset, maxOpset) {
  const list = [...ops].sort((a, b) => a.localeCompare(b)).map((op) => `\`${op}\``).join(', ');
  return `${START}\n${ops.length} operators of the default ONNX domain, opsets ${minOpset}–${maxOpset}: ${list}.\n${END}`;
}

/** The section as the README holds it now, or null when the markers are missing. */
export function readmeSection(text) {
  const a = text.indexOf(START), b = text.indexOf(END);
  return a < 0 || b < a ? null : text.slice(a, b + END.length);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const readmePath = fileURLToPath(new URL('../README.md', import.meta.url));
  const { SUPPORTED_OPERATORS, MIN_OPSET, MAX_OPSET } = await import(new URL('../dist/onnx/model.js', import.meta.url).href);
  const text = readFileSync(readmePath, 'utf8');
  const now = readmeSection(text);
  if (now === null) {
    console.error(`README.md has no operator section (the markers ${START} … ${END})`);
    process.exit(1);
  }
  const want = operatorSection(SUPPORTED_OPERATORS, MIN_OPSET, MAX_OPSET);
  if (process.argv.includes('--check')) {
    if (now !== want) {
      console.error('README.md: the ONNX operator list is stale; run node scripts/onnx-ops.mjs');
      process.exit(1);
    }
    console.log('README.md: the ONNX operator list is up to date');
  } else {
    writeFileSync(readmePath, text.replace(now, want));
    console.log(`README.md: ${SUPPORTED_OPERATORS.length} ONNX operators`);
  }
}

/** A small labelled mail corpus for the classify-spam tests, written as JSONL. */
import { writeFileSync } from 'node:fs';
import { Rng } from '../../src/tensor/rng.ts';

/** 200 seeded mails over a 12-word vocabulary (every third one spam), one JSON object per line. */
export function writeMail(path: string): void {
  const rng = new Rng(1);
  const ham = ['meeting', 'notes', 'lunch', 'project', 'report', 'team', 'monday'];
  const spam = ['free', 'cash', 'winner', 'click', 'offer'];
  const lines = Array.from({ length: 200 }, (_, i) => {
    const isSpam = i % 3 === 0;
    const words = Array.from({ length: 5 + rng.int(6) }, () => (isSpam && rng.random() < 0.4 ? spam : ham)[rng.int(isSpam ? 5 : 7)]);
    return JSON.stringify({ input: words.join(' '), target: isSpam ? 'spam' : 'ham' });
  });
  writeFileSync(path, lines.join('\n') + '\n');
}

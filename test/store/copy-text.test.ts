// COPY text encoded a line at a time (src/store/copy-text.ts): the bytes are the UTF-8 of the lines joined, whatever
// the lines hold (astral characters, three-byte ones, escapes) and however often the buffer grows on the way.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CopyLines, copyField } from '../../src/store/copy-text.js';

describe('COPY lines', () => {
  it('are the UTF-8 of the lines joined, across any number of growths', () => {
    const field = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: 'binary', minLength: 200, maxLength: 900 }),
      fc.constant(null),
      fc.constantFrom('€', '𝄞', '\\N', '\t\n\r\\'),
    );
    fc.assert(
      fc.property(
        fc.array(fc.array(field, { minLength: 1, maxLength: 6 }), { maxLength: 60 }),
        fc.integer({ min: 0, max: 4096 }),
        (rows, hint) => {
          const lines = new CopyLines(hint);
          const text = rows.map((row) => `${row.map(copyField).join('\t')}\n`);
          for (const line of text) lines.add(line);
          assert.deepEqual(lines.bytes(), Buffer.from(text.join(''), 'utf8'));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reuse a released buffer: the next lines are theirs alone, and a released writer holds nothing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.string({ unit: 'binary', maxLength: 300 }), { maxLength: 20 }), { minLength: 2, maxLength: 6 }),
        fc.integer({ min: 0, max: 8192 }),
        (batches, hint) => {
          const written: Array<{ lines: CopyLines; expected: Buffer }> = [];
          for (const batch of batches) {
            const lines = new CopyLines(hint);
            const text = batch.map((field) => `${copyField(field)}\n`);
            for (const line of text) lines.add(line);
            written.push({ lines, expected: Buffer.from(text.join(''), 'utf8') });
            // Every writer not yet released still reads its own lines, though earlier ones gave their buffers back.
            for (const w of written) assert.deepEqual(w.lines.bytes(), w.expected);
            if (batch.length % 2 === 0) {
              lines.release();
              assert.equal(lines.bytes().length, 0);
              written.pop();
              const next = new CopyLines(hint); // takes the buffer given back
              next.add('the next writer\n');
              lines.add('written after its release\n'); // into a buffer of its own, not the one given back
              assert.deepEqual(next.bytes(), Buffer.from('the next writer\n'));
              next.release();
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

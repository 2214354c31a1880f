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
});

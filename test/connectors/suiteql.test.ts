// SuiteQL literals (src/connectors/netsuite/suiteql.ts): the one quoting function of the NetSuite connector.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { suiteqlText, SUITEQL_TEXT_MAX } from '../../src/connectors/netsuite/suiteql.js';
import { journalListQuery } from '../../src/connectors/netsuite/client.js';
import { paymentsQuery } from '../../src/connectors/netsuite/sales.js';
import { TargetError } from '../../src/post/target.js';

describe('suiteqlText', () => {
  it('doubles single quotes and leaves everything else as it is', () => {
    assert.equal(suiteqlText("O'Brien"), "'O''Brien'");
    assert.equal(suiteqlText("''"), "''''''");
    assert.equal(suiteqlText("x' OR '1'='1"), "'x'' OR ''1''=''1'");
    assert.equal(suiteqlText(''), "''");
    assert.equal(suiteqlText('Zürich "INV-1" \\ %_'), '\'Zürich "INV-1" \\ %_\'');
  });

  it('refuses NUL, every control character and an overlong value, as a permanent TargetError', () => {
    for (const bad of ['a\u0000b', 'a\nb', 'a\rb', '\t', '\u001f', '\u007f', '\u0085', 'x'.repeat(SUITEQL_TEXT_MAX + 1)]) {
      assert.throws(
        () => suiteqlText(bad),
        (error: unknown) => error instanceof TargetError && error.details.permanent,
        JSON.stringify(bad),
      );
    }
    assert.equal(suiteqlText('x'.repeat(SUITEQL_TEXT_MAX)).length, SUITEQL_TEXT_MAX + 2);
  });

  it('is what the queries quote their values with', () => {
    assert.match(journalListQuery("s'1", '2026-11-01', '2026-12-01'), /tl\.subsidiary = 's''1' AND t\.trandate >= TO_DATE\('2026-11-01'/);
    assert.match(
      paymentsQuery('2026-11-01 00:00:00'),
      /NOT LIKE 'out-v1-%'\) AND p\.lastmodifieddate >= TO_TIMESTAMP\('2026-11-01 00:00:00'/,
    );
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  correlationChain,
  correlationId,
  documentLogFields,
  formatCorrelationHeader,
  isCorrelationId,
  parseCorrelationHeader,
} from '../../src/domain/correlation.js';

const sha24 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 24);

describe('correlation id', () => {
  it('is the SHA-256 of the canonical JSON of invoice and rating run, written out by hand here', () => {
    assert.equal(
      correlationId({ invoice: 'inv_1', rating_run: 'rr:v1:abc' }),
      `corr:v1:${sha24('{"invoice":"inv_1","rating_run":"rr:v1:abc"}')}`,
    );
    assert.equal(correlationId({ invoice: 'inv_1', rating_run: null }), `corr:v1:${sha24('{"invoice":"inv_1","rating_run":null}')}`);
    assert.equal(
      correlationId({ invoice: 'a"b\\c\n', rating_run: 'é' }),
      `corr:v1:${sha24('{"invoice":"a\\"b\\\\c\\n","rating_run":"é"}')}`,
    );
  });

  it('depends on both links and has one shape', () => {
    const a = correlationId({ invoice: 'inv_1', rating_run: 'rr:v1:a' });
    assert.notEqual(a, correlationId({ invoice: 'inv_2', rating_run: 'rr:v1:a' }));
    assert.notEqual(a, correlationId({ invoice: 'inv_1', rating_run: 'rr:v1:b' }));
    assert.ok(isCorrelationId(a));
    assert.ok(!isCorrelationId('corr:v2:0123456789abcdef01234567'));
    assert.ok(!isCorrelationId('NWUS-000001'));
  });
});

describe('X-Accrue-Correlation', () => {
  const chain = correlationChain(
    { invoice: 'inv_9', rating_run: 'rr:v1:77' },
    {
      journal: 'jrn:v1:invoice:inv_9',
      outbox: 'out:v1:netsuite:jrn:v1:invoice:inv_9',
      usage_batches: ['ub:2', 'ub:1', 'ub:2'],
      usage_batch_count: 12,
    },
  );

  it('carries the id, then the links known when the request leaves; batches as a count', () => {
    assert.deepEqual(chain.usage_batches, ['ub:1', 'ub:2'], 'sorted, once each');
    assert.equal(
      formatCorrelationHeader(chain),
      `${chain.correlation_id};rr=rr:v1:77;inv=inv_9;jrn=jrn:v1:invoice:inv_9;out=out:v1:netsuite:jrn:v1:invoice:inv_9;batches=12`,
    );
    assert.equal(
      formatCorrelationHeader(correlationChain({ invoice: 'inv_9', rating_run: null })),
      `${correlationId({ invoice: 'inv_9', rating_run: null })};inv=inv_9`,
    );
  });

  it('reads back what it wrote, whatever the ids hold (a payment id comes from outside)', () => {
    const id = fc.string({ unit: 'binary', minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(id, fc.option(id, { nil: null }), id, (invoice, ratingRun, journal) => {
        const c = correlationChain({ invoice, rating_run: ratingRun }, { journal });
        const header = formatCorrelationHeader(c);
        assert.match(header, /^[\x21-\x7e]+$/, 'visible ASCII only');
        const parsed = parseCorrelationHeader(header)!;
        assert.equal(parsed.correlation_id, c.correlation_id);
        assert.equal(parsed.invoice, invoice);
        assert.equal(parsed.rating_run, ratingRun ?? undefined);
        assert.equal(parsed.journal, journal);
      }),
    );
  });

  it('is not fooled by other headers', () => {
    assert.equal(parseCorrelationHeader('abc;rr=x'), undefined);
    assert.equal(parseCorrelationHeader(`${chain.correlation_id};garbage`), undefined);
    assert.deepEqual(parseCorrelationHeader(`${chain.correlation_id};future=1;inv=inv_9`), {
      correlation_id: chain.correlation_id,
      invoice: 'inv_9',
    });
  });
});

describe('log fields', () => {
  it('name the document and its correlation, so one grep finds every stage', () => {
    assert.deepEqual(
      documentLogFields({ id: 'inv_1', number: 'NWUS-000001', kind: 'invoice', customer: 'acme', rating_run: 'rr:v1:abc' }),
      {
        correlation: correlationId({ invoice: 'inv_1', rating_run: 'rr:v1:abc' }),
        rating_run: 'rr:v1:abc',
        invoice: 'inv_1',
        number: 'NWUS-000001',
        kind: 'invoice',
        customer: 'acme',
      },
    );
  });
});

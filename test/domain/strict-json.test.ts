import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Decimal } from '../../src/domain/money.js';
import {
  decodeUtf8,
  firstInvalidUtf8,
  JSON_DEPTH_MAX,
  parseStrictJson,
  parseStrictJsonBytes,
  parseStrictJsonByReader,
  sameDecimal,
} from '../../src/domain/strict-json.js';
import { parseCatalog } from '../../src/domain/catalog.js';

const refused = (text: string | Uint8Array) => {
  const result = typeof text === 'string' ? parseStrictJson(text) : parseStrictJsonBytes(text);
  assert.equal(result.ok, false, `accepted ${String(text).slice(0, 80)}`);
  return (result as { problems: Array<{ path: string; code: string; message: string; offset: number }> }).problems;
};

describe('strict JSON: what JSON.parse rewrites is refused, naming the field and the byte', () => {
  it('refuses a repeated key at any depth, naming its path and where the second one is', () => {
    const [dk] = refused('{"id":"dk-2","id":"dk-3"}');
    assert.deepEqual([dk!.path, dk!.code, dk!.offset], ['id', 'duplicate_key', 13]);
    const [deep] = refused('{"data":{"gb_hours":"1","gb_hours":"2"}}');
    assert.deepEqual([deep!.path, deep!.code], ['data.gb_hours', 'duplicate_key']);
    const [inArray] = refused('{"a":[0,{"b":{"x y":1,"x y":2}}]}');
    assert.equal(inArray!.path, 'a[1].b["x y"]');
    assert.match(inArray!.message, /byte 22/);
  });

  it('finds the repeated key wherever a generator puts it', () => {
    const step = fc.oneof(
      fc.string({ maxLength: 6 }).map((name) => ({ name })),
      fc.nat(3).map((index) => ({ index })),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 12 }), fc.string({ maxLength: 6 }), (steps, key) => {
        // Build the text around {"key":1,"key":2} at the path, arrays padded with zeros before the index.
        let inner = `{${JSON.stringify(key)}:1,${JSON.stringify(key)}:2}`;
        for (let k = steps.length - 1; k >= 0; k -= 1) {
          const s = steps[k]!;
          inner = 'name' in s ? `{${JSON.stringify(s.name)}:${inner}}` : `[${'0,'.repeat(s.index)}${inner}]`;
        }
        const problems = refused(inner);
        assert.equal(problems.length, 1);
        assert.equal(problems[0]!.code, 'duplicate_key');
        const expected = [...steps.map((s) => ('name' in s ? s.name : s.index)), key];
        let path = '';
        for (const s of expected)
          path +=
            typeof s === 'number'
              ? `[${s}]`
              : /^[A-Za-z_][A-Za-z0-9_]*$/.test(s)
                ? `${path === '' ? '' : '.'}${s}`
                : `[${JSON.stringify(s)}]`;
        assert.equal(problems[0]!.path, path);
        // The offset points at the second occurrence of the key, in bytes.
        const bytes = Buffer.from(inner);
        const second = bytes.indexOf(Buffer.from(`,${JSON.stringify(key)}:2}`)) + 1;
        assert.equal(problems[0]!.offset, second);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses numbers a double does not carry exactly, and keeps those it does', () => {
    for (const [text, code] of [
      ['1e-400', 'inexact_number'],
      ['1e309', 'number_out_of_range'],
      ['-1e309', 'number_out_of_range'],
      ['12345678901234567890123456789012345678901', 'inexact_number'],
      ['9007199254740993', 'inexact_number'],
      ['0.1000000000000000055511151231257827', 'inexact_number'],
    ] as const) {
      const [p] = refused(`{"data":{"gb_hours":${text}}}`);
      assert.deepEqual([p!.path, p!.code], ['data.gb_hours', code], text);
      assert.match(p!.message, /byte 20/);
    }
    for (const text of [
      '0',
      '-0',
      '0.1',
      '1.0',
      '1e2',
      '1E+2',
      '123456789012345',
      '9007199254740992',
      '1.5e-7',
      '1e300',
      '5e-324',
      '1.0000000000000000000000000000000000000000000',
    ]) {
      const result = parseStrictJson(text);
      assert.ok(result.ok, text);
      assert.ok(new Decimal(String(result.value)).equals(new Decimal(text)), text);
    }
  });

  it('accepts a number exactly when its decimal value survives the double (decimal.js as the oracle)', () => {
    const literal = fc
      .tuple(
        fc.boolean(),
        fc.stringMatching(/^(0|[1-9]\d{0,44})$/),
        fc.option(fc.stringMatching(/^\d{1,30}$/), { nil: undefined }),
        fc.option(fc.integer({ min: -420, max: 420 }), { nil: undefined }),
      )
      .map(
        ([negative, int, frac, exp]) =>
          `${negative ? '-' : ''}${int}${frac === undefined ? '' : `.${frac}`}${exp === undefined ? '' : `e${exp}`}`,
      );
    fc.assert(
      fc.property(literal, (text) => {
        const result = parseStrictJson(text);
        const value = Number(text);
        const exact = Number.isFinite(value) && new Decimal(text).equals(new Decimal(String(value)));
        assert.equal(result.ok, exact, text);
        if (result.ok) assert.equal(result.value, value);
        else
          assert.ok(
            ['inexact_number', 'number_out_of_range'].includes((result as { problems: Array<{ code: string }> }).problems[0]!.code),
          );
      }),
      { numRuns: 3000 },
    );
    fc.assert(fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (d) => assert.ok(parseStrictJson(JSON.stringify(d)).ok)));
    assert.ok(sameDecimal('100', '1e2') && sameDecimal('-0', '0') && !sameDecimal('1', '-1'));
  });

  it('refuses NUL and unpaired surrogates, escaped or raw, in strings and keys', () => {
    assert.equal(refused('{"id":"a\\u0000b"}')[0]!.path, 'id');
    assert.equal(refused('{"id":"\\ud800"}')[0]!.code, 'invalid_text');
    assert.equal(refused('{"id":"\\udc00\\ud800"}')[0]!.code, 'invalid_text');
    assert.equal(refused('{"id":"\ud800"}')[0]!.code, 'invalid_text');
    assert.equal(refused('{"data":{"\\ud800":1}}')[0]!.path, 'data');
    assert.ok(parseStrictJson('"\\ud83d\\ude00"').ok);
  });

  it('refuses nesting beyond the limit without recursing into it', () => {
    for (const depth of [JSON_DEPTH_MAX + 1, 5_000, 1_000_000]) {
      const problems = refused(`${'['.repeat(depth)}${']'.repeat(depth)}`);
      assert.equal(problems[0]!.code, 'too_deep');
    }
    assert.ok(parseStrictJson(`${'['.repeat(JSON_DEPTH_MAX)}${']'.repeat(JSON_DEPTH_MAX)}`).ok);
    assert.equal(refused(`{"a":${'{"b":'.repeat(5_000)}1${'}'.repeat(5_000)}}`)[0]!.code, 'too_deep');
    assert.equal(refused(`${'['.repeat(5_000)}`)[0]!.code, 'too_deep'); // unbalanced: still no throw
  });

  it('reads a top-level array element by element when asked, and stops past elementsMax', () => {
    const result = parseStrictJson('[{"id":1,"id":2},{"ok":true},{"n":1e999}]', { perElement: true });
    assert.ok(result.ok);
    assert.deepEqual([...result.elementProblems.keys()], [0, 2]);
    assert.equal(result.elementProblems.get(0)![0]!.path, 'id');
    assert.equal(result.elementProblems.get(2)![0]!.path, 'n');
    assert.equal(refused('[1,2')[0]!.code, 'malformed_json');
    const many = parseStrictJson(`[${'{},'.repeat(400_000)}{}]`, { elementsMax: 1000 });
    assert.equal(many.ok, false);
    assert.equal((many as { problems: Array<{ code: string }> }).problems[0]!.code, 'too_many_elements');
  });

  it('reads valid JSON as JSON.parse does, own __proto__ member included', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const text = JSON.stringify(value);
        const result = parseStrictJson(text);
        assert.ok(result.ok, text);
        assert.deepEqual(result.value, JSON.parse(text));
      }),
      { numRuns: 2000 },
    );
    const proto = parseStrictJson('{"__proto__":{"polluted":1}}');
    assert.ok(proto.ok);
    assert.equal(Object.getPrototypeOf(proto.value), Object.prototype);
    assert.deepEqual(Object.keys(proto.value as object), ['__proto__']);
    assert.equal(refused(Buffer.from('x')).length, 1);
    assert.equal(parseStrictJson('{"__proto__":1}', { refuseProtoKeys: true }).ok, false);
    assert.equal(parseStrictJson('{"a":{"constructor":{"prototype":{"x":1}}}}', { refuseProtoKeys: true }).ok, false);
    assert.ok(parseStrictJson('{"constructor":"c","prototype":1}', { refuseProtoKeys: true }).ok);
  });
});

describe('strict JSON: the shortcut through JSON.parse answers what the reader answers', () => {
  // parseStrictJson reads a document it can prove plain with JSON.parse; anything else goes to the reader. Whatever the
  // text, hostile or not, the answer (value, or problems with their paths, codes and bytes) must be the reader's.
  const hostileNumber = fc.constantFrom(
    '1e309',
    '-1e309',
    '1e-400',
    '1234567890123456789012345678901234567890',
    '0.1',
    '1.0',
    '-0',
    '9007199254740993',
    '1E2',
    '01',
    '1.',
    '-',
    '2e-5',
    '12345678901234567',
    '0.30000000000000004',
  );
  const hostileString = fc.constantFrom(
    '\\u0000',
    '\\ud800',
    '\\udc00x',
    '\\ud83d\\ude00',
    '\uD800',
    '\uDC00',
    '\uD83D\uDE00',
    '\\"',
    '\\\\',
    '\t',
    'é',
    '\\u00e9',
    '__proto__',
    'constructor',
    'prototype',
    ':',
    ',',
  );
  const text: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
      hostileNumber,
      hostileString.map((inner) => `"${inner}"`),
      fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
      fc
        .array(fc.tuple(fc.oneof(fc.constantFrom('a', 'b', '__proto__', 'constructor', 'prototype'), hostileString), tie('value')), {
          maxLength: 4,
        })
        .map((members) => `{${members.map(([k, v]) => `"${k}":${v}`).join(',')}}`),
    ),
  })).value;
  const options = fc.constantFrom<Parameters<typeof parseStrictJson>[1]>(
    {},
    { perElement: true, elementsMax: 3 },
    { refuseProtoKeys: true },
    { depthMax: 3 },
  );

  it('for generated documents, valid and not, and every option', () => {
    fc.assert(
      fc.property(text, options, (document, option) => {
        assert.deepEqual(parseStrictJson(document, option), parseStrictJsonByReader(document, option), document);
      }),
      { numRuns: 5000 },
    );
  });

  // parseStrictJsonBytes reads a top-level array element by element from the bytes (no text of the whole body): the
  // answer must be the reader's on the decoded text, whatever surrounds, separates or breaks the elements.
  const space = fc.constantFrom('', ' ', '\n\t', '\r\n  ', '\f', '\u00a0', '\uFEFF');
  const separator = fc.constantFrom(',', ',', ',', ' , ', ',,', '', ':', '}', ']', '[', '"');
  const batch = fc
    .tuple(
      space,
      fc.array(fc.tuple(space, text, space, separator), { maxLength: 5 }),
      space,
      fc.constantFrom(']', ']', '}', '', ']]', '],', ']x'),
    )
    .map(([before, items, after, close]) => {
      const body = items.map(([s1, item, s2, sep], k) => `${s1}${item}${s2}${k < items.length - 1 ? sep : ''}`).join('');
      return `${before}[${body}${close}${after}`;
    });
  const bytesOf = fc.oneof(
    batch.map((document) => Buffer.from(document, 'utf8')),
    // Invalid UTF-8 inside and between elements.
    fc.tuple(batch, fc.nat(), fc.constantFrom(0xff, 0xc0, 0xed, 0x80, 0x00)).map(([document, at, byte]) => {
      const bytes = Buffer.from(document, 'utf8');
      if (bytes.length > 0) bytes[at % bytes.length] = byte;
      return bytes;
    }),
  );
  // The answer without its plainText claim, which is checked here: every string and member name of the value is then
  // printable ASCII without a quote or a backslash (what ingestion writes as it is in canonical JSON and COPY text).
  const vouched = (result: ReturnType<typeof parseStrictJsonBytes>) => {
    if (!result.ok) return result;
    const { plainText, ...answer } = result;
    if (!plainText) return answer;
    const strings: string[] = [];
    const walk = (value: unknown): void => {
      if (typeof value === 'string') strings.push(value);
      else if (Array.isArray(value)) value.forEach(walk);
      else if (value && typeof value === 'object')
        for (const [key, member] of Object.entries(value)) {
          strings.push(key);
          walk(member);
        }
    };
    walk(result.value);
    for (const text of strings) assert.match(text, /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/, `vouched for ${JSON.stringify(text)}`);
    return answer;
  };
  const decodedOrProblem = (bytes: Uint8Array, option: Parameters<typeof parseStrictJson>[1]) => {
    const decoded = decodeUtf8(bytes);
    return decoded.ok ? parseStrictJsonByReader(decoded.text, option) : { ok: false, problems: [decoded.problem] };
  };

  it('for generated arrays as bytes, read element by element, valid and not, and every option', () => {
    fc.assert(
      fc.property(bytesOf, options, (bytes, option) => {
        assert.deepEqual(
          vouched(parseStrictJsonBytes(bytes, option)),
          decodedOrProblem(bytes, option),
          Buffer.from(bytes).toString('utf8'),
        );
      }),
      { numRuns: 5000 },
    );
  });

  it('for arrays of events as bytes at the batch limit and beyond, and nested to the edges of the depth limit', () => {
    const event = (n: number) => ({ id: `e-${n}`, source: '//s', type: 't', data: { ué: n, list: [1, 2.5, 'x"y'], nested: { a: null } } });
    for (const count of [0, 1, 999, 1000, 1001]) {
      const bytes = Buffer.from(JSON.stringify(Array.from({ length: count }, (_, n) => event(n))));
      const option = { perElement: true, elementsMax: 1000 };
      assert.deepEqual(vouched(parseStrictJsonBytes(bytes, option)), decodedOrProblem(bytes, option), `${count} events`);
    }
    for (const depth of [JSON_DEPTH_MAX - 2, JSON_DEPTH_MAX - 1, JSON_DEPTH_MAX, JSON_DEPTH_MAX + 1]) {
      for (const document of [
        '[' + '['.repeat(depth) + ']'.repeat(depth) + ',1]',
        '[1,' + '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) + ']',
      ]) {
        const bytes = Buffer.from(document);
        assert.deepEqual(vouched(parseStrictJsonBytes(bytes)), decodedOrProblem(bytes, {}), `depth ${depth}`);
      }
    }
    for (const document of ['[1}2]', '[1,]', '[,1]', '[1 2]', '[{"a":1,"a":2}]', '["a\\"b"]', '["\\u0000"]', '[1]x', ' [ 1 , 2 ] ']) {
      const bytes = Buffer.from(document);
      assert.deepEqual(vouched(parseStrictJsonBytes(bytes)), decodedOrProblem(bytes, {}), document);
    }
  });

  it('vouches for the strings of a batch only when its bytes are ASCII without a backslash', () => {
    const event = { id: 'e-1', source: '//s', type: 't', time: '2026-11-01T00:00:00Z', data: { region: 'eu', n: 1.5 } };
    const plain = (document: string) =>
      (parseStrictJsonBytes(Buffer.from(document), { perElement: true }) as { plainText?: boolean }).plainText === true;
    assert.equal(plain(JSON.stringify([event, event])), true);
    assert.equal(plain(JSON.stringify([{ ...event, id: 'tab\there' }])), false, 'an escape');
    assert.equal(plain(JSON.stringify([{ ...event, id: 'quote"' }])), false, 'an escaped quote');
    assert.equal(plain(JSON.stringify([{ ...event, id: 'é' }])), false, 'beyond ASCII');
    assert.equal(plain('[{"id":"a\\u0041"}]'), false, 'a \\u escape');
  });

  it('for deep nesting and repeated keys at the edges of the limits', () => {
    for (const depth of [JSON_DEPTH_MAX - 2, JSON_DEPTH_MAX - 1, JSON_DEPTH_MAX, JSON_DEPTH_MAX + 1]) {
      for (const document of ['['.repeat(depth) + ']'.repeat(depth), '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)]) {
        assert.deepEqual(parseStrictJson(document), parseStrictJsonByReader(document), `depth ${depth}`);
      }
    }
    for (const document of ['{"a":1,"a":1}', '[{"x":{"y":1,"y":2}}]', '{"a":{"b":1},"a":{"b":1}}', '{"a":"x:y","b":1}']) {
      assert.deepEqual(parseStrictJson(document), parseStrictJsonByReader(document), document);
    }
  });
});

describe('strict JSON: UTF-8', () => {
  it('names the first invalid byte exactly where the fatal decoder fails, for any bytes', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const at = firstInvalidUtf8(bytes);
        let valid = true;
        try {
          decoder.decode(bytes);
        } catch {
          valid = false;
        }
        assert.equal(at === bytes.length, valid);
        decoder.decode(bytes.subarray(0, at)); // everything before it is UTF-8
        if (!valid) {
          // and the sequence starting there is not: no prefix of the rest that includes that byte decodes
          assert.throws(() => decoder.decode(bytes.subarray(at, Math.min(at + 4, bytes.length))));
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses invalid bytes in a body, naming the byte, never replacing them', () => {
    const body = (bad: number[]) => Buffer.concat([Buffer.from('{"id":"collide-'), Buffer.from(bad), Buffer.from('"}')]);
    for (const bad of [[0xfe], [0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80], [0xf5, 0x80, 0x80, 0x80]]) {
      const [p] = refused(body(bad));
      assert.deepEqual([p!.code, p!.offset], ['invalid_utf8', 15], bad.join(','));
      assert.match(p!.message, /at byte 15/);
    }
    const bom = decodeUtf8(Buffer.from([0xef, 0xbb, 0xbf, 0x31]));
    assert.ok(bom.ok && bom.text === '\ufeff1'); // kept, so a BOM-prefixed body is not silently JSON
  });

  it('refuses duplicate keys and inexact numbers in a catalog in JSON form', () => {
    const dup = parseCatalog('{"version": 1, "version": 2}', 'json');
    assert.equal(dup.ok, false);
    assert.equal((dup as { problems: Array<{ path: string; code: string }> }).problems[0]!.code, 'duplicate_key');
    const num = parseCatalog('{"version": 1e-400}', 'json');
    assert.equal((num as { problems: Array<{ path: string; code: string }> }).problems[0]!.path, 'version');
  });
});

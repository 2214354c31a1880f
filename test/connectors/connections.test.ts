// erp.connections: configuration checked key by key, and the store's routing of each legal entity to one connection.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  baseUrl,
  connectionOfEntity,
  connectionsFromFile,
  listConnections,
  saveConnections,
  setConnectionStatus,
} from '../../src/connectors/connections.js';
import { transaction, type Store } from '../../src/store/store.js';
import { testStore } from '../support/db.js';

const codes = (value: unknown) => {
  const result = connectionsFromFile(value, 'erp');
  return result.ok ? [] : result.problems.map((p) => `${p.path} ${p.code}`);
};

describe('erp.connections in configuration', () => {
  it('reads Xero and NetSuite connections with their defaults', () => {
    const result = connectionsFromFile(
      {
        connections: {
          'xero-de': { kind: 'xero', legal_entities: ['nw-de'], tenant_id: 't-1' },
          ns: { kind: 'netsuite', legal_entities: ['nw-us'], account_id: '1234567_SB1', concurrency: 10 },
        },
      },
      'erp',
    );
    assert.ok(result.ok);
    assert.deepEqual(result.value[0], { name: 'xero-de', kind: 'xero', legal_entities: ['nw-de'], tenant_id: 't-1' });
    assert.equal(result.value[1]!.auth, 'tba');
    assert.equal(baseUrl(result.value[1]!), 'https://1234567-sb1.suitetalk.api.netsuite.com');
    assert.equal(baseUrl(result.value[0]!), 'https://api.xero.com');
  });

  it('refuses a legal entity on two connections, unknown keys and kinds, a NetSuite connection without its account, limits out of range', () => {
    assert.deepEqual(
      codes({ connections: { a: { kind: 'xero', legal_entities: ['nw-de'] }, b: { kind: 'xero', legal_entities: ['nw-de'] } } }),
      ['erp.connections.b.legal_entities entity_on_two_connections'],
    );
    assert.deepEqual(codes({ connections: { a: { kind: 'sap', legal_entities: ['x'] } } }), ['erp.connections.a.kind unknown_kind']);
    assert.deepEqual(codes({ connections: { a: { kind: 'xero', legal_entities: ['x'], account_id: '1' } } }), [
      'erp.connections.a.account_id unknown_key',
    ]);
    assert.deepEqual(codes({ connections: { a: { kind: 'netsuite', legal_entities: ['x'] } } }), ['erp.connections.a.account_id required']);
    assert.deepEqual(codes({ connections: { a: { kind: 'netsuite', legal_entities: ['x'], account_id: 'acme' } } }), [
      'erp.connections.a.account_id invalid_account',
    ]);
    assert.deepEqual(codes({ connections: { a: { kind: 'xero', legal_entities: ['x'], concurrency: 6 } } }), [
      'erp.connections.a.concurrency out_of_range',
    ]);
    assert.deepEqual(codes({ connections: { a: { kind: 'xero', legal_entities: [] } } }), [
      'erp.connections.a.legal_entities invalid_list',
    ]);
    assert.deepEqual(codes({ connections: { 'Bad Name': { kind: 'xero', legal_entities: ['x'] } } }), [
      'erp.connections.Bad Name invalid_name',
    ]);
    assert.deepEqual(codes({ links: {} }), ['erp.links unknown_key']);
  });
});

describe('connections in the store', () => {
  let store: Store;
  before(async () => {
    store = await testStore();
  });
  after(async () => store.close());

  it('routes each legal entity to its connection, and refuses moving one whose documents still wait', async () => {
    const first = await saveConnections(store.pool, [
      { name: 'xero-de', kind: 'xero', legal_entities: ['nw-de'] },
      { name: 'xero-us', kind: 'xero', legal_entities: ['nw-us'] },
    ]);
    assert.ok(first.ok);
    assert.equal(await connectionOfEntity(store.pool, 'nw-de'), 'xero-de');
    assert.equal(await connectionOfEntity(store.pool, 'nw-us'), 'xero-us');
    assert.ok(
      (await saveConnections(store.pool, [{ name: 'xero-de', kind: 'xero', legal_entities: ['nw-de'] }])).ok,
      'saving the same configuration again changes nothing',
    );

    await store.pool.query(
      `INSERT INTO outbox (key, target, document_kind, document_id) VALUES ('out:v1:xero-de:jrn:x', 'xero-de', 'invoice', 'jrn:x')`,
    );
    const moved = await saveConnections(store.pool, [{ name: 'xero-us', kind: 'xero', legal_entities: ['nw-us', 'nw-de'] }]);
    assert.ok(!moved.ok);
    assert.equal(moved.problems[0]!.code, 'entity_has_waiting_documents');
    assert.equal(await connectionOfEntity(store.pool, 'nw-de'), 'xero-de', 'nothing moved');

    const kind = await saveConnections(store.pool, [{ name: 'xero-de', kind: 'netsuite', legal_entities: ['nw-de'], account_id: '1' }]);
    assert.ok(!kind.ok);
    assert.equal(kind.problems[0]!.code, 'kind_changed');
  });

  it('moves a connection to needs_reauthorization once, with its audit record', async () => {
    const moved = await transaction(store.pool, (c) =>
      setConnectionStatus(c, 'xero-de', 'needs_reauthorization', 'invalid_grant', 'system:test'),
    );
    const again = await transaction(store.pool, (c) =>
      setConnectionStatus(c, 'xero-de', 'needs_reauthorization', 'invalid_grant', 'system:test'),
    );
    assert.deepEqual([moved, again], [true, false]);
    const state = (await listConnections(store.pool)).find((c) => c.name === 'xero-de')!;
    assert.equal(state.status, 'needs_reauthorization');
    assert.deepEqual(state.legal_entities, ['nw-de']);
    const audit = await store.pool.query("SELECT count(*)::int AS n FROM audit_log WHERE action = 'erp.connection.needs_reauthorization'");
    assert.equal(audit.rows[0].n, 1);
  });
});

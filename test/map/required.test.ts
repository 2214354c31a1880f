// requiredMappings over the Northwind catalog: what a NetSuite connection (nw-us) and a Xero connection (nw-de) need.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseCatalog } from '../../src/domain/catalog.js';
import { requiredMappings, type RequiredMapping } from '../../src/map/required.js';
import type { ConnectionSettings } from '../../src/domain/erp.js';

const loaded = parseCatalog(readFileSync('examples/northwind/catalog.yaml', 'utf8'));
if (!loaded.ok) throw new Error('northwind catalog does not load');
const catalog = loaded.value.catalog;

const netsuite: ConnectionSettings = { name: 'ns-us', kind: 'netsuite', legal_entities: ['nw-us'], account_id: '1234567_SB1' };
const xero: ConnectionSettings = { name: 'xero-de', kind: 'xero', legal_entities: ['nw-de'] };

const summary = (needs: RequiredMapping[]) => needs.map((n) => `${n.kind}:${n.source}:${n.required ? 'required' : 'optional'}`).sort();

test('NetSuite (nw-us): subsidiary, currencies, every account, SuiteTax type+code+nexus per jurisdiction, items required, customers optional under create', () => {
  const needs = requiredMappings(catalog, netsuite, '2026-11-15');
  assert.deepEqual(
    summary(needs),
    [
      'subsidiary:nw-us:required',
      'currency:USD:required',
      ...['1200', '1000', '2300', '2400', '4000', '4010', '4020', '4030', '4090'].map((a) => `account:${a}:required`),
      ...['US-CA', 'US-NY', 'US-OR'].flatMap((j) => [`tax_type:${j}:required`, `tax_code:${j}:required`, `nexus:${j}:required`]),
      ...['acme', 'globex', 'initech'].map((c) => `customer:${c}:optional`),
      ...['api', 'analytics', 'storage', 'compute', 'platform'].map((p) => `item:${p}:required`),
    ].sort(),
  );
  // Nothing of the German entity: its accounts, its jurisdiction, its customer, its currency.
  assert.ok(!needs.some((n) => ['1400', '8400', 'DE', 'umbrella', 'EUR', 'nw-de'].includes(n.source)));
  assert.deepEqual(
    needs.find((n) => n.kind === 'currency')?.needed_by.sort(),
    [
      'customer acme credit grant',
      'customer acme plan growth-usd',
      'customer globex plan growth-usd',
      'customer initech plan growth-usd',
      'legal entity nw-us currency',
    ].sort(),
  );
});

test('NetSuite with customers: link makes every customer of its entities a required mapping', () => {
  const needs = requiredMappings(catalog, { ...netsuite, customers: 'link' }, '2026-11-15');
  assert.deepEqual(
    needs.filter((n) => n.kind === 'customer').map((n) => [n.source, n.required]),
    [
      ['acme', true],
      ['globex', true],
      ['initech', true],
    ],
  );
});

test('Xero (nw-de): no subsidiary, tax code or nexus; TaxType required (no silent default); item codes optional', () => {
  const needs = requiredMappings(catalog, xero, '2026-11-15');
  assert.deepEqual(
    summary(needs),
    [
      'currency:EUR:required',
      ...['1400', '1800', '3806', '3900', '8400', '8410', '8420', '8430', '8490'].map((a) => `account:${a}:required`),
      'tax_type:DE:required',
      'customer:umbrella:optional',
      ...['api', 'analytics', 'storage', 'compute', 'platform'].map((p) => `item:${p}:optional`),
    ].sort(),
  );
});

test('a customer on a plan in another currency than its entity needs that currency too; an ended subscription does not', () => {
  const usdCustomer = { ...catalog.customers.find((c) => c.id === 'umbrella')!, id: 'wayne' };
  const extended = {
    ...catalog,
    customers: [...catalog.customers, usdCustomer],
    subscriptions: [...catalog.subscriptions, { customer: 'wayne', plan: 'growth-usd', start: '2026-01-01', end: '2026-07-01' }],
  };
  assert.ok(!requiredMappings(extended, xero, '2026-11-15').some((n) => n.kind === 'currency' && n.source === 'USD'));
  const usd = requiredMappings(extended, xero, '2026-06-15').find((n) => n.kind === 'currency' && n.source === 'USD');
  assert.deepEqual(usd?.needed_by, ['customer wayne plan growth-usd']);
});

// ERP connections: read from configuration (`erp.connections`), kept in the store (erp_connections, and which
// connection each legal entity posts to), and their status (active, needs_reauthorization, parked until a time).
import type pg from 'pg';
import { fail, ok, problem, type Problem, type Result } from '../domain/result.js';
import { transaction } from '../store/store.js';
import { appendAudit } from '../audit/log.js';
import type { ConnectionSettings, ErpKind } from '../domain/erp.js';

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const KINDS: readonly ErpKind[] = ['xero', 'netsuite'];
const KEYS: Record<ErpKind, readonly string[]> = {
  xero: [
    'kind',
    'legal_entities',
    'base_url',
    'tenant_id',
    'concurrency',
    'customers',
    'closed_period',
    'authorize_url',
    'token_url',
    'connections_url',
  ],
  netsuite: ['kind', 'legal_entities', 'base_url', 'account_id', 'auth', 'concurrency', 'customers', 'closed_period', 'token_url'],
};
/** NetSuite account ids: digits, with `_SB<n>` for a sandbox or `_RP<n>` for a release preview. */
const NETSUITE_ACCOUNT = /^[0-9]{1,12}(_(SB|RP)[0-9]{1,3})?$/i;
/** Xero allows 5 calls in progress per tenant; NetSuite's account limit is configuration (5 without SuiteCloud Plus). */
export const CONCURRENCY_DEFAULT: Record<ErpKind, number> = { xero: 5, netsuite: 5 };
const CONCURRENCY_MAX: Record<ErpKind, number> = { xero: 5, netsuite: 55 };

/**
 * `erp: { connections: { <name>: { kind, legal_entities, ... } } }` from a configuration file. Each legal entity may
 * be named by one connection only; a NetSuite connection needs its account id; every key is checked.
 */
export function connectionsFromFile(value: unknown, origin: string): Result<ConnectionSettings[]> {
  if (value === null || value === undefined) return ok([]);
  const problems: Problem[] = [];
  if (typeof value !== 'object' || Array.isArray(value))
    return fail(problem(origin, 'not_a_mapping', 'must be a mapping with connections'));
  for (const key of Object.keys(value))
    if (key !== 'connections') problems.push(problem(`${origin}.${key}`, 'unknown_key', 'unknown key; known keys: connections'));
  const connections = (value as { connections?: unknown }).connections;
  if (connections === undefined || connections === null) return problems.length ? fail(...problems) : ok([]);
  if (typeof connections !== 'object' || Array.isArray(connections))
    return fail(problem(`${origin}.connections`, 'not_a_mapping', 'must map connection names to their settings'));
  const settings: ConnectionSettings[] = [];
  const entityOwner = new Map<string, string>();
  for (const [name, raw] of Object.entries(connections as Record<string, unknown>)) {
    const s = connectionFromEntry(name, raw, `${origin}.connections.${name}`, entityOwner, problems);
    if (s) settings.push(s);
  }
  return problems.length ? fail(...problems) : ok(settings);
}

/** One connection's entry checked key by key, problems at `at`; undefined when it is not a mapping of a known kind. */
function connectionFromEntry(
  name: string,
  raw: unknown,
  at: string,
  entityOwner: Map<string, string>,
  problems: Problem[],
): ConnectionSettings | undefined {
  if (!NAME.test(name))
    problems.push(
      problem(at, 'invalid_name', 'a connection name is lower-case letters, digits, _ and -, at most 63, starting with a letter or digit'),
    );
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push(problem(at, 'not_a_mapping', 'must be a mapping with kind and legal_entities'));
    return undefined;
  }
  const entry = raw as Record<string, unknown>;
  const kind = entry.kind as ErpKind;
  if (!KINDS.includes(kind)) {
    problems.push(problem(`${at}.kind`, 'unknown_kind', `must be one of ${KINDS.join(', ')}`));
    return undefined;
  }
  for (const key of Object.keys(entry))
    if (!KEYS[kind].includes(key))
      problems.push(problem(`${at}.${key}`, 'unknown_key', `unknown key for a ${kind} connection; known keys: ${KEYS[kind].join(', ')}`));
  const entities = entry.legal_entities;
  checkEntities(entities, name, at, entityOwner, problems);
  const s: ConnectionSettings = {
    name,
    kind,
    legal_entities: Array.isArray(entities) ? (entities as string[]).map((e) => String(e).trim()) : [],
  };
  const field: ConnectionEntry = { at, entry, problems };
  readAddresses(field, s);
  if (kind === 'netsuite') readNetsuite(field, s);
  readPolicies(field, s);
  return s;
}

/** A connection's entry as it is read: where it is, its keys, and the problems found so far. */
interface ConnectionEntry {
  at: string;
  entry: Record<string, unknown>;
  problems: Problem[];
}

/** A key's value as trimmed text; a value that is not text is a problem. */
function textOf({ at, entry, problems }: ConnectionEntry, key: string): string | undefined {
  const v = entry[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') {
    problems.push(problem(`${at}.${key}`, 'not_text', 'must be text'));
    return undefined;
  }
  return String(v).trim();
}

/** The legal entities: a non-empty list, each named by one connection only. */
function checkEntities(entities: unknown, name: string, at: string, entityOwner: Map<string, string>, problems: Problem[]): void {
  if (!Array.isArray(entities) || entities.length === 0 || entities.some((e) => typeof e !== 'string' || e.trim() === '')) {
    problems.push(
      problem(`${at}.legal_entities`, 'invalid_list', 'must list the legal entities (at least one) that post to this connection'),
    );
    return;
  }
  for (const entity of entities as string[]) {
    const owner = entityOwner.get(entity);
    if (owner !== undefined)
      problems.push(
        problem(
          `${at}.legal_entities`,
          'entity_on_two_connections',
          `legal entity ${entity} already posts to connection ${owner}; each legal entity posts to exactly one connection`,
        ),
      );
    entityOwner.set(entity, name);
  }
}

/** The URLs (http(s), trailing slashes dropped) and the tenant and account ids. */
function readAddresses(field: ConnectionEntry, s: ConnectionSettings): void {
  for (const key of ['base_url', 'tenant_id', 'account_id', 'authorize_url', 'token_url', 'connections_url'] as const) {
    const v = textOf(field, key);
    if (v === undefined) continue;
    if (key.endsWith('url') && !/^https?:\/\/[^\s]+$/.test(v))
      field.problems.push(problem(`${field.at}.${key}`, 'invalid_url', 'must be an http(s) URL'));
    s[key] = key.endsWith('url') ? v.replace(/\/+$/, '') : v;
  }
}

/** A NetSuite connection's account id (required) and its authentication (tba by default). */
function readNetsuite(field: ConnectionEntry, s: ConnectionSettings): void {
  const { at, problems } = field;
  if (s.account_id === undefined)
    problems.push(
      problem(
        `${at}.account_id`,
        'required',
        'a NetSuite connection names its account id (Setup > Company > Company Information), e.g. 1234567 or 1234567_SB1',
      ),
    );
  else if (!NETSUITE_ACCOUNT.test(s.account_id))
    problems.push(problem(`${at}.account_id`, 'invalid_account', 'must be a NetSuite account id such as 1234567 or 1234567_SB1'));
  const auth = textOf(field, 'auth') ?? 'tba';
  if (auth !== 'tba' && auth !== 'client_credentials')
    problems.push(problem(`${at}.auth`, 'unknown_auth', 'must be tba or client_credentials'));
  s.auth = auth as ConnectionSettings['auth'];
}

/** The concurrency limit and the customers and closed-period policies, each when given. */
function readPolicies(field: ConnectionEntry, s: ConnectionSettings): void {
  const { at, entry, problems } = field;
  const concurrency = entry.concurrency;
  if (concurrency !== undefined) {
    if (typeof concurrency !== 'number' || !Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > CONCURRENCY_MAX[s.kind])
      problems.push(problem(`${at}.concurrency`, 'out_of_range', `must be a whole number from 1 to ${CONCURRENCY_MAX[s.kind]}`));
    else s.concurrency = concurrency;
  }
  const customers = textOf(field, 'customers');
  if (customers !== undefined) {
    if (customers !== 'create' && customers !== 'link')
      problems.push(problem(`${at}.customers`, 'unknown_policy', 'must be create or link'));
    else s.customers = customers;
  }
  const closed = textOf(field, 'closed_period');
  if (closed !== undefined) {
    if (closed !== 'first_open_day' && closed !== 'exception')
      problems.push(problem(`${at}.closed_period`, 'unknown_policy', 'must be first_open_day or exception'));
    else s.closed_period = closed;
  }
}

/** The API base URL of a connection: configured, or the ERP's own. */
export function baseUrl(settings: ConnectionSettings): string {
  if (settings.base_url) return settings.base_url;
  if (settings.kind === 'xero') return 'https://api.xero.com';
  // NetSuite's account-specific domain: lower case, underscore as hyphen (1234567_SB1 -> 1234567-sb1).
  return `https://${(settings.account_id ?? '').toLowerCase().replace(/_/g, '-')}.suitetalk.api.netsuite.com`;
}

/** The concurrency limit of a connection, from its settings or the ERP's default. */
export const concurrencyOf = (settings: ConnectionSettings): number => settings.concurrency ?? CONCURRENCY_DEFAULT[settings.kind];

/**
 * Writes the configured connections to the store: new ones are added (status unauthorized), settings refreshed, and
 * each legal entity routed to its connection. A legal entity moved to another connection while documents wait for the
 * old one is refused: the waiting entries would post to the wrong books.
 */
export async function saveConnections(
  pool: pg.Pool,
  connections: readonly ConnectionSettings[],
  actor = 'system:config',
): Promise<Result<void>> {
  return transaction(pool, async (client) => {
    await client.query('LOCK TABLE erp_entity_connections IN SHARE ROW EXCLUSIVE MODE');
    const problems: Problem[] = [];
    for (const c of connections) {
      if (!(await saveConnection(client, c, actor, problems))) continue;
      for (const entity of c.legal_entities) await routeEntity(client, c.name, entity, actor, problems);
    }
    if (problems.length) throw Object.assign(new Error('refused'), { problems });
    return ok(undefined);
  }).catch((error: unknown) => {
    const problems = (error as { problems?: Problem[] }).problems;
    if (problems) return fail(...problems);
    throw error;
  });
}

/** Adds a new connection or refreshes its settings; false (a problem) when the store has it as another kind. */
async function saveConnection(client: pg.PoolClient, c: ConnectionSettings, actor: string, problems: Problem[]): Promise<boolean> {
  const existing = await client.query<{ kind: string; settings: unknown }>('SELECT kind, settings FROM erp_connections WHERE name = $1', [
    c.name,
  ]);
  const row = existing.rows[0];
  if (row && row.kind !== c.kind) {
    problems.push(
      problem(
        `erp.connections.${c.name}.kind`,
        'kind_changed',
        `connection ${c.name} is a ${row.kind} connection in the store; name a new connection instead`,
      ),
    );
    return false;
  }
  if (!row) {
    await client.query('INSERT INTO erp_connections (name, kind, settings) VALUES ($1, $2, $3)', [c.name, c.kind, JSON.stringify(c)]);
    await appendAudit(client, {
      actor,
      action: 'erp.connection.added',
      subject: c.name,
      details: { kind: c.kind, legal_entities: c.legal_entities },
    });
  } else if (JSON.stringify(row.settings) !== JSON.stringify(JSON.parse(JSON.stringify(c)))) {
    await client.query('UPDATE erp_connections SET settings = $2, updated_at = now() WHERE name = $1', [c.name, JSON.stringify(c)]);
  }
  return true;
}

/** Routes a legal entity to the connection; refused (a problem) while documents wait for the one it posts to now. */
async function routeEntity(client: pg.PoolClient, connection: string, entity: string, actor: string, problems: Problem[]): Promise<void> {
  const current = await client.query<{ connection: string }>('SELECT connection FROM erp_entity_connections WHERE legal_entity = $1', [
    entity,
  ]);
  const was = current.rows[0]?.connection;
  if (was === connection) return;
  if (was !== undefined) {
    const waiting = await client.query("SELECT 1 FROM outbox WHERE target = $1 AND status = 'pending' LIMIT 1", [was]);
    if (waiting.rowCount) {
      problems.push(
        problem(
          `erp.connections.${connection}.legal_entities`,
          'entity_has_waiting_documents',
          `legal entity ${entity} posts to ${was}, which still has documents waiting; post or dead-letter them before moving the entity`,
        ),
      );
      return;
    }
    await client.query('UPDATE erp_entity_connections SET connection = $2 WHERE legal_entity = $1', [entity, connection]);
  } else {
    await client.query('INSERT INTO erp_entity_connections (legal_entity, connection) VALUES ($1, $2)', [entity, connection]);
  }
  await appendAudit(client, {
    actor,
    action: 'erp.connection.entity_routed',
    subject: entity,
    details: { connection, previous: was ?? null },
  });
}

export interface ConnectionState {
  name: string;
  kind: ErpKind;
  status: 'unauthorized' | 'active' | 'needs_reauthorization';
  status_reason: string | null;
  status_since: string;
  parked_until: string | null;
  parked_reason: string | null;
  settings: ConnectionSettings;
  legal_entities: string[];
}

export async function listConnections(db: pg.Pool | pg.PoolClient): Promise<ConnectionState[]> {
  const rows = await db.query<{
    name: string;
    kind: ErpKind;
    status: ConnectionState['status'];
    status_reason: string | null;
    status_since: Date;
    parked_until: Date | null;
    parked_reason: string | null;
    settings: ConnectionSettings;
    legal_entities: string[] | null;
  }>(
    `SELECT c.name, c.kind, c.status, c.status_reason, c.status_since, c.parked_until, c.parked_reason, c.settings,
            (SELECT array_agg(e.legal_entity ORDER BY e.legal_entity) FROM erp_entity_connections e WHERE e.connection = c.name) AS legal_entities
       FROM erp_connections c ORDER BY c.name`,
  );
  return rows.rows.map((r) => ({
    ...r,
    status_since: r.status_since.toISOString(),
    parked_until: r.parked_until?.toISOString() ?? null,
    legal_entities: r.legal_entities ?? [],
  }));
}

/** The connection a legal entity posts to, if any. */
export async function connectionOfEntity(db: pg.Pool | pg.PoolClient, legalEntity: string): Promise<string | undefined> {
  return (await db.query<{ connection: string }>('SELECT connection FROM erp_entity_connections WHERE legal_entity = $1', [legalEntity]))
    .rows[0]?.connection;
}

/**
 * Moves a connection's status (with the audit record in the same transaction): `needs_reauthorization` when a refresh
 * or grant is refused, `active` again after `accrue connect`. Returns false when it already had that status.
 */
export async function setConnectionStatus(
  client: pg.PoolClient,
  name: string,
  status: ConnectionState['status'],
  reason: string | null,
  actor: string,
): Promise<boolean> {
  const result = await client.query(
    'UPDATE erp_connections SET status = $2, status_reason = $3, status_since = now(), updated_at = now() WHERE name = $1 AND status <> $2',
    [name, status, reason],
  );
  if (!result.rowCount) return false;
  await appendAudit(client, { actor, action: `erp.connection.${status}`, subject: name, details: { reason } });
  return true;
}

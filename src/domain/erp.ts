// The ERP contract as data (issue #15, #16): a connection's settings, the mapping kinds and how Accrue's ids resolve to
// the ERP's, what an `erp check` reports, the payment document pushed, and the refusals every stage understands
// (a person must reauthorize, a parked connection, a missing mapping, a locked period). Pure: no I/O.

export type ErpKind = 'xero' | 'netsuite';

/** One named connection: a Xero organisation (tenant) or a NetSuite account. Non-secret; secrets are sealed in the store. */
export interface ConnectionSettings {
  name: string;
  kind: ErpKind;
  /** The legal entities that post here; each legal entity posts to exactly one connection. */
  legal_entities: string[];
  /** API base URL; defaults: https://api.xero.com, https://<account>.suitetalk.api.netsuite.com. Tests point it at a simulator. */
  base_url?: string;
  /** Xero: the organisation's tenant id (chosen at `accrue connect xero`). */
  tenant_id?: string;
  /** NetSuite: the account id as NetSuite writes it (`1234567`, `1234567_SB1` for a sandbox); the TBA realm. */
  account_id?: string;
  /** NetSuite: Token-Based Authentication (OAuth 1.0a) or OAuth 2.0 client credentials (machine to machine). */
  auth?: 'tba' | 'client_credentials';
  /** Requests in flight at once across every process: Xero 5 per tenant; NetSuite the account's limit (5 standard, more with SuiteCloud Plus). */
  concurrency?: number;
  /** Customers: create or update the ERP record before its first document (`create`, default), or only link existing ones (`link`). */
  customers?: 'create' | 'link';
  /** A document dated in a period the ERP has closed or locked: post it on the first open day, or raise an exception. */
  closed_period?: 'first_open_day' | 'exception';
  /** OAuth endpoints, overridable for a simulator: Xero's identity server, NetSuite's token endpoint. */
  authorize_url?: string;
  token_url?: string;
  connections_url?: string;
}

/** What Accrue's ids map to in the ERP (erp_mappings.kind). */
export const MAPPING_KINDS = ['customer', 'item', 'account', 'tax_code', 'tax_type', 'nexus', 'currency', 'subsidiary'] as const;
export type MappingKind = (typeof MAPPING_KINDS)[number];

/** The connection must be authorized again by a person (`accrue connect`); its entries wait, none is dead-lettered. */
export class ReauthorizationRequired extends Error {
  constructor(
    readonly connection: string,
    readonly reason: string,
  ) {
    super(`ERP connection ${connection} needs reauthorization: ${reason}`);
    this.name = 'ReauthorizationRequired';
  }
}

/** A daily (or other long) limit was reached: no call to the connection before `until`; attempts are not spent. */
export class ConnectionParked extends Error {
  constructor(
    readonly connection: string,
    readonly until: Date,
    readonly reason: string,
  ) {
    super(`ERP connection ${connection} is parked until ${until.toISOString()}: ${reason}`);
    this.name = 'ConnectionParked';
  }
}

/** A document needs a mapping the store does not have (or the ERP refused the one it has): an exception, not a retry. */
export class MappingMissing extends Error {
  constructor(
    readonly connection: string,
    readonly kind: MappingKind,
    readonly source: string,
    /** The document field that needs it, e.g. `lines[2].item` or `customer`. */
    readonly field: string,
    readonly refusedBy?: string, // the ERP's message when it refused an existing mapping
  ) {
    super(
      refusedBy
        ? `${connection}: the ERP refused the ${kind} mapping of ${JSON.stringify(source)} at ${field}: ${refusedBy}`
        : `${connection}: no ${kind} mapping for ${JSON.stringify(source)} (needed at ${field})`,
    );
    this.name = 'MappingMissing';
  }
}

/** Mappings of one connection, as loaded from the store: the ERP's id for an Accrue id in force on a date. */
export interface MappingResolver {
  readonly connection: string;
  /** The target in force on `on` (YYYY-MM-DD); throws MappingMissing naming `field` when there is none. */
  resolve(kind: MappingKind, source: string, on: string, field: string): string;
  /** The same without throwing. */
  find(kind: MappingKind, source: string, on: string): string | undefined;
}

/** Loads a connection's mappings as they are now (a snapshot; a mapping fixed after a refusal is seen by the next load). */
export interface MappingSource {
  readonly connection: string;
  load(): Promise<MappingResolver>;
}

/** `accrue erp check`: what the ERP says of one mapping's target. */
export type ReferenceState = { state: 'active' } | { state: 'inactive'; detail: string } | { state: 'missing'; detail: string };

/** A connector that can look a mapping's target up in its ERP (customer, item, account, tax code, currency, subsidiary). */
export interface ReferenceChecker {
  checkReference(kind: MappingKind, target: string): Promise<ReferenceState>;
}

/**
 * A payment Accrue received (the payment webhook), to be pushed to the ERP and applied to its invoice so the ERP's
 * receivable clears (NetSuite customerPayment, Xero Payments). The key travels with it (NetSuite externalId, Xero
 * Reference) so the ERP's payment is found again, and payment polling knows it as Accrue's own.
 */
export interface PaymentDocument {
  payment_id: string; // Accrue's payment id (payments.id)
  invoice_number: string; // Accrue's invoice number, as posted to the ERP
  invoice_id: string; // Accrue's invoice id
  legal_entity: string;
  customer: string; // Accrue's customer id (the source of its customer mapping)
  customer_erp_id: string; // the catalog's ERP customer id of the invoice (what journal lines carry)
  currency: string; // ISO 4217
  amount_minor: bigint;
  received_on: string; // YYYY-MM-DD
}

/**
 * The ERP refuses the document's date: the period is closed (NetSuite) or before the lock date (Xero). The outbox
 * applies the connection's `closed_period` policy: post it dated `firstOpenDay` (when known), or raise an exception.
 */
export class PeriodLocked extends Error {
  constructor(
    readonly connection: string,
    readonly date: string, // the document's date the ERP refused (YYYY-MM-DD)
    readonly firstOpenDay: string | null, // the first date the ERP accepts, when it says
    readonly detail: string,
  ) {
    super(
      `${connection}: the ERP's period for ${date} is closed or locked${firstOpenDay ? ` (first open day ${firstOpenDay})` : ''}: ${detail}`,
    );
    this.name = 'PeriodLocked';
  }
}

/** One mapping row as data: the ERP's id for an Accrue id, in force from `from` (YYYY-MM-DD) when given. */
export interface MappingEntry {
  kind: MappingKind;
  source: string;
  target: string;
  from?: string;
}

/**
 * Mappings held in memory (tests, one-off commands, a file read at start): the latest entry in force on a date
 * wins. An Accrue id without an entry resolves to MappingMissing, never to a default.
 */
export function staticMappings(connection: string, entries: readonly MappingEntry[]): MappingSource & MappingResolver {
  const inForce = (kind: MappingKind, source: string, on: string) =>
    entries
      .filter((e) => e.kind === kind && e.source === source && (e.from === undefined || e.from <= on))
      .sort((a, b) => ((a.from ?? '') < (b.from ?? '') ? -1 : (a.from ?? '') > (b.from ?? '') ? 1 : 0))
      .at(-1)?.target;
  const resolver: MappingSource & MappingResolver = {
    connection,
    load: async () => resolver,
    find: (kind, source, on) => inForce(kind, source, on),
    resolve(kind, source, on, field) {
      const target = inForce(kind, source, on);
      if (target === undefined) throw new MappingMissing(connection, kind, source, field);
      return target;
    },
  };
  return resolver;
}

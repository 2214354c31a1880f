// Access controls, pure: the roles a principal holds, what each role may do, and which actions need a second person.
// Segregation of duties is in the table itself: the admin manages principals and keys and nothing else; the controller
// approves and reads but operates nothing; the billing operator runs billing and proposes money-moving changes but
// approves none; the auditor reads everything, the audit log included, and changes nothing; an ingest key sends events.

export const ROLES = ['ingest', 'operator', 'controller', 'auditor', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_TITLES: Readonly<Record<Role, string>> = {
  ingest: 'sends usage events (a service)',
  operator: 'billing operator: runs billing, posting and settlement, works exceptions, proposes money-moving changes',
  controller: 'approver: approves or rejects what an operator proposes; reads everything',
  auditor: 'read-only: reports, exports, the audit log and its verification',
  admin: 'manages principals and API keys only (not thereby an approver or an operator)',
};

/** What a request or command needs. Each route and each state-changing command names exactly one. */
export const PERMISSIONS = [
  'events.write', // send usage events
  'data.read', // read usage, invoices, ledger, reconciliation, explain, dashboard
  'audit.read', // read the audit log
  'audit.verify', // verify the chain (reads every record) and check signed checkpoints
  'billing.run', // close billing periods, bill, post, poll settlement, replay quarantine and notifications
  'exceptions.work', // assign and resolve exceptions (a waiver is a change request)
  'disputes.work', // open, assign and reject disputes (a credit note is a change request)
  'change.propose', // propose a catalog or mapping change, a period close, a waiver, a void, a credit note
  'change.approve', // approve or reject another principal's change request
  'erp.connect', // connect an ERP account (credentials)
  'principals.manage', // create and disable principals
  'keys.manage', // create and revoke API keys
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  ingest: ['events.write'],
  operator: ['data.read', 'billing.run', 'exceptions.work', 'disputes.work', 'change.propose', 'erp.connect'],
  controller: ['data.read', 'audit.read', 'change.approve'],
  auditor: ['data.read', 'audit.read', 'audit.verify'],
  admin: ['principals.manage', 'keys.manage'],
};

/** Whether any of the roles grants the permission. */
export function rolesGrant(roles: readonly Role[], permission: Permission): boolean {
  return roles.some((role) => ROLE_PERMISSIONS[role]?.includes(permission));
}

/** The roles that grant a permission, for messages that tell what would. */
export function rolesWith(permission: Permission): Role[] {
  return ROLES.filter((role) => ROLE_PERMISSIONS[role].includes(permission));
}

export const isRole = (value: string): value is Role => (ROLES as readonly string[]).includes(value);

/**
 * The actions that go through maker-checker: proposed by one principal, in force only once a different principal with
 * the controller role approves. Which of them need approval is configuration (`controls.approval` in the
 * configuration file); every one does by default.
 */
export const CHANGE_KINDS = [
  'catalog.apply', // prices, plans, customers, tax rates: a new catalog version
  'mappings.import', // ERP mappings (customers, items, accounts, tax codes, currencies, subsidiaries)
  'period.close', // close an accounting period for an entity
  'exception.waive', // accept an exception without fixing it
  'invoice.void', // void a finalized invoice (reversing journal, ERP void)
  'credit_note.issue', // a manual credit note (a dispute's resolution among them)
] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

export const isChangeKind = (value: string): value is ChangeKind => (CHANGE_KINDS as readonly string[]).includes(value);

/** The default policy: every change kind needs a second person. */
export const DEFAULT_APPROVAL_REQUIRED: readonly ChangeKind[] = CHANGE_KINDS;

/**
 * Who is acting, as every state-changing use case receives it. `principal` is the authenticated principal's id; in
 * local development mode (no key, explicitly asked for) it is `dev:<os user>` and `dev` is true, and the audit log
 * records the action as such.
 */
export interface Actor {
  principal: string;
  name: string;
  roles: readonly Role[];
  /** Legal entities this actor's key may see and act on; empty means every entity. */
  entities: readonly string[];
  keyId?: string;
  dev?: boolean;
}

/** The actor as the audit log's `actor` column names it. */
export function auditActor(actor: Actor): string {
  if (actor.dev || actor.principal.startsWith('system:')) return actor.principal;
  return actor.keyId ? `principal:${actor.principal}/key:${actor.keyId}` : `principal:${actor.principal}`;
}

/** Whether an actor limited to some entities may see or act on this one. */
export function entityVisible(actor: Pick<Actor, 'entities'>, entity: string): boolean {
  return actor.entities.length === 0 || actor.entities.includes(entity);
}

/** The system's own components (billing runs, workers) act as `system:<component>` with every permission they need. */
export function systemActor(component: string): Actor {
  return { principal: `system:${component}`, name: component, roles: [], entities: [] };
}

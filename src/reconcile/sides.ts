// Both sides of one checkpoint as a reader gathers them, with the documents behind each key for the exception.
import type pg from 'pg';
import type { Amount, ReconKey, SideEntry } from './checkpoints.js';

export type Db = pg.Pool | pg.PoolClient;

/** A document a difference concerns: an invoice, journal, payment, rating run, usage aggregate or ERP record. */
export interface DocumentRef {
  kind: string;
  id: string;
  connector?: string;
}

export const keyText = (key: ReconKey): string => JSON.stringify([key.legal_entity, key.customer, key.currency, key.item]);
export const amountText = (value: Amount | null): string | null =>
  value === null ? null : typeof value === 'bigint' ? value.toString() : value;

/** Both sides of one checkpoint plus the documents behind each key, for the exception. */
export class Sides {
  readonly left: SideEntry[] = [];
  readonly right: SideEntry[] = [];
  readonly documents = new Map<string, DocumentRef[]>();
  pending = 0;

  add(side: 'left' | 'right', key: ReconKey, value: bigint | string, documents: DocumentRef[] = []): void {
    (side === 'left' ? this.left : this.right).push([key, value]);
    if (documents.length === 0) return;
    const list = this.documents.get(keyText(key)) ?? [];
    for (const doc of documents)
      if (!list.some((d) => d.kind === doc.kind && d.id === doc.id && d.connector === doc.connector)) list.push(doc);
    this.documents.set(keyText(key), list);
  }
}

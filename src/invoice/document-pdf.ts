// A stored invoice as PDF with the parties and product names of the catalog in force: the one path the API, the
// dashboard, `accrue invoices pdf` and the demo share.
import type { CatalogVersion } from '../catalog/service.js';
import type { Invoice } from '../domain/model.js';
import { fail, ok, problem, type Result } from '../domain/result.js';
import { renderInvoicePdf } from './pdf.js';

/** The invoice's PDF, or `not_in_catalog` when the catalog in force no longer has its legal entity or customer. */
export async function invoicePdf(invoice: Invoice, catalog: CatalogVersion): Promise<Result<Buffer>> {
  const legalEntity = catalog.index.legalEntities.get(invoice.legal_entity);
  const customer = catalog.index.customers.get(invoice.customer);
  if (!legalEntity || !customer) {
    const gone = legalEntity ? `customer ${invoice.customer}` : `legal entity ${invoice.legal_entity}`;
    return fail(problem('invoice', 'not_in_catalog', `the catalog in force no longer has ${gone}`));
  }
  const products = new Map(catalog.catalog.products.map((p) => [p.id, { name: p.name }]));
  return ok(await renderInvoicePdf({ invoice, legalEntity, customer, products }));
}

// The dashboard shell: the API key prompt, navigation between the views, and the period every view looks at.
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { apiKey, ApiError, getJson } from './api.js';
import type { PeriodInfo, WhoAmI } from './types.js';
import { href, parseHash, type Route } from './route.js';
import { html, useApi } from './ui.js';
import { OverviewView } from './views/overview.js';
import { PipelineView } from './views/pipeline.js';
import { ReconciliationView } from './views/reconciliation.js';
import { InvoiceDetailView, InvoicesView } from './views/invoices.js';
import { CustomerDetailView, CustomersView } from './views/customers.js';
import { ControlsView } from './views/controls.js';

const NAV = [
  { view: 'overview', label: 'Overview' },
  { view: 'pipeline', label: 'Pipeline health' },
  { view: 'reconciliation', label: 'Reconciliation' },
  { view: 'invoices', label: 'Invoices' },
  { view: 'customers', label: 'Customers' },
  { view: 'controls', label: 'Controls' },
];

function KeyPrompt(props: { onKey: (who: WhoAmI) => void; problem?: string }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState(props.problem);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    apiKey.set(value.trim());
    try {
      props.onKey(await getJson<WhoAmI>('/v1/dashboard/whoami'));
    } catch (e) {
      apiKey.clear();
      setError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login">
    <form class="card login-card" onSubmit=${submit} data-testid="key-form">
      <div class="brand big">Accrue</div>
      <h1>Usage to cash, at a glance</h1>
      <p class="muted">
        Paste an API key. A <b>read</b> key sees everything; an <b>admin</b> key can also replay dead letters and work exceptions. Create
        one with <code>accrue keys create --principal NAME --name dashboard</code> (a principal with the auditor, operator or controller
        role). The key stays in this tab only.
      </p>
      <label for="key">API key</label>
      <input
        id="key"
        name="key"
        type="password"
        autocomplete="off"
        placeholder="acc_read_…"
        value=${value}
        onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)}
        required
      />
      ${error ? html`<div class="alert error" role="alert">${error}</div>` : null}
      <button class="primary" type="submit" disabled=${busy || value.trim() === ''}>${busy ? 'Checking…' : 'Open the dashboard'}</button>
    </form>
  </main>`;
}

function App() {
  const [who, setWho] = useState<WhoAmI | undefined>();
  const [checking, setChecking] = useState(apiKey.get() !== null);
  const [route, setRoute] = useState(parseHash);
  useEffect(() => {
    const onHash = () => setRoute(parseHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    if (apiKey.get() === null) return;
    getJson<WhoAmI>('/v1/dashboard/whoami').then(
      (w) => {
        setWho(w);
        setChecking(false);
      },
      () => {
        apiKey.clear();
        setChecking(false);
      },
    );
  }, []);
  if (checking) return html`<div class="loading">Loading…</div>`;
  if (!who) return html`<${KeyPrompt} onKey=${setWho} />`;
  return html`<${Shell}
    who=${who}
    route=${route}
    onSignOut=${() => {
      apiKey.clear();
      setWho(undefined);
    }}
  />`;
}

function Shell(props: { who: WhoAmI; route: Route; onSignOut: () => void }) {
  const periods = useApi(() => getJson<{ periods: PeriodInfo[] }>('/v1/dashboard/periods'), []);
  const list = periods.data?.periods ?? [];
  const fallback = (list.find((p) => p.invoices > 0) ?? list[0])?.period ?? new Date().toISOString().slice(0, 7);
  const period = props.route.params.get('period') ?? fallback;
  // Actions show only to a key that may take them: replaying a dead letter runs billing, moving an exception works it.
  const admin = props.who.permissions.includes('billing.run') && props.who.permissions.includes('exceptions.work');
  const choosePeriod = (next: string) => {
    const params = new URLSearchParams(props.route.params);
    params.set('period', next);
    location.hash = `#/${props.route.view}${props.route.id ? `/${encodeURIComponent(props.route.id)}` : ''}?${params}`;
  };
  const { view, id } = props.route;
  let body;
  if (periods.loading && !periods.data) body = html`<div class="loading">Loading…</div>`;
  else if (view === 'overview') body = html`<${OverviewView} period=${period} />`;
  else if (view === 'pipeline') body = html`<${PipelineView} admin=${admin} params=${props.route.params} />`;
  else if (view === 'reconciliation') body = html`<${ReconciliationView} period=${period} admin=${admin} params=${props.route.params} />`;
  else if (view === 'invoices' && id) body = html`<${InvoiceDetailView} id=${id} period=${period} />`;
  else if (view === 'invoices') body = html`<${InvoicesView} period=${period} params=${props.route.params} />`;
  else if (view === 'customers' && id) body = html`<${CustomerDetailView} id=${id} period=${period} />`;
  else if (view === 'customers') body = html`<${CustomersView} period=${period} />`;
  else if (view === 'controls') body = html`<${ControlsView} canApprove=${props.who.permissions.includes('change.approve')} />`;
  else body = html`<div class="alert error">No view ${view}. <a href="#/overview">Back to the overview</a></div>`;
  return html`<div class="shell">
    <header class="topbar">
      <a class="brand" href=${href('overview', undefined, { period })}>Accrue</a>
      <nav aria-label="Views">
        ${NAV.map(
          (n) =>
            html`<a
              href=${href(n.view, undefined, { period })}
              class=${view === n.view ? 'active' : ''}
              aria-current=${view === n.view ? 'page' : undefined}
              data-testid=${`nav-${n.view}`}
              >${n.label}</a
            >`,
        )}
      </nav>
      <div class="topbar-right">
        <label class="period-picker">
          <span>Period</span>
          <select value=${period} onChange=${(e: Event) => choosePeriod((e.target as HTMLSelectElement).value)} data-testid="period">
            ${(list.some((p) => p.period === period) ? list : [{ period, closed_entities: [], invoices: 0 }, ...list]).map(
              (p) => html`<option value=${p.period}>${p.period}${p.closed_entities.length ? ' · closed' : ''}</option>`,
            )}
          </select>
        </label>
        <span
          class=${`scope ${admin ? 'admin' : 'read'}`}
          title=${`key ${props.who.id} of ${props.who.principal}${props.who.entities.length ? `, entities ${props.who.entities.join(', ')}` : ''}`}
          data-testid="scope"
          >${props.who.principal} ·
          ${props.who.roles.join(', ')}${
            props.who.entities.length ? html` · <span data-testid="scope-entities">only ${props.who.entities.join(', ')}</span>` : ''
          }</span
        >
        <button class="link" onClick=${props.onSignOut}>Sign out</button>
      </div>
    </header>
    <main class="content">${body}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app')!);

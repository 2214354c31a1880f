// Reconciliation for finance operations at month end: each checkpoint of the period green or with its differences,
// and the exception queues, where an admin key assigns, resolves (naming the correcting document) and waives.
import { useState } from 'preact/hooks';
import { ApiError, getJson, postJson } from '../api.js';
import { CHECKPOINT_LABELS, count, dateTime, QUEUE_LABELS, reconAmount, shortId } from '../format.js';
import type { ExceptionRecord, Reconciliation } from '../types.js';
import { Card, ChartView, Empty, html, Pill, Status, useApi } from '../ui.js';

const QUEUES = ['finance_operations', 'billing_engineering', 'integration_support'] as const;
const STATUSES = ['unresolved', 'open', 'assigned', 'resolved', 'waived'] as const;
const STATUS_TONE = { open: 'red', assigned: 'amber', resolved: 'green', waived: 'grey' } as const;

function ExceptionActions(props: { exception: ExceptionRecord; onDone: (message: string) => void }) {
  const e = props.exception;
  const [assignee, setAssignee] = useState(e.assigned_to ?? '');
  const [document, setDocument] = useState('');
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const act = async (path: 'assign' | 'resolve' | 'waive', body: Record<string, string>, done: string) => {
    setBusy(true);
    setError(undefined);
    try {
      await postJson(`/v1/exceptions/${encodeURIComponent(e.id)}/${path}`, body);
      props.onDone(done);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  const field = (id: string, label: string, value: string, set: (v: string) => void, placeholder: string) =>
    html`<input
      aria-label=${label}
      data-testid=${id}
      value=${value}
      placeholder=${placeholder}
      onInput=${(ev: Event) => set((ev.target as HTMLInputElement).value)}
    />`;
  if (e.status === 'resolved' || e.status === 'waived') return null;
  return html`<div class="actions-panel" data-testid=${`actions-${e.id}`}>
    <form
      class="inline"
      onSubmit=${(ev: Event) => {
        ev.preventDefault();
        void act('assign', { assignee }, `Exception ${shortId(e.id)} assigned to ${assignee}.`);
      }}
    >
      ${field('assignee', 'Assign to', assignee, setAssignee, 'person or team')}
      <button class="small" type="submit" disabled=${busy || assignee.trim() === ''} data-testid="assign">
        ${e.status === 'assigned' ? 'Reassign' : 'Assign'}
      </button>
    </form>
    ${
      e.status === 'assigned'
        ? html`<form
              class="inline"
              onSubmit=${(ev: Event) => {
                ev.preventDefault();
                void act('resolve', { correcting_document: document }, `Exception ${shortId(e.id)} resolved by ${document}.`);
              }}
            >
              ${field('correcting-document', 'Correcting document', document, setDocument, 'credit note, re-posting, adjustment id')}
              <button class="small primary" type="submit" disabled=${busy || document.trim() === ''} data-testid="resolve">Resolve</button>
            </form>
            <form
              class="inline"
              onSubmit=${(ev: Event) => {
                ev.preventDefault();
                void act('waive', { reason }, `Exception ${shortId(e.id)} waived.`);
              }}
            >
              ${field('waive-reason', 'Reason to waive', reason, setReason, 'why the difference is accepted')}
              <button class="small" type="submit" disabled=${busy || reason.trim() === ''} data-testid="waive">Waive</button>
            </form>`
        : html`<span class="muted">Assign it first; then it can be resolved or waived.</span>`
    }
    ${error ? html`<div class="alert error" role="alert">${error}</div>` : null}
  </div>`;
}

export function ReconciliationView(props: { period: string; admin: boolean; params: URLSearchParams }) {
  const report = useApi(() => getJson<Reconciliation>(`/v1/periods/${props.period}/reconciliation`), [props.period]);
  const [queue, setQueue] = useState<string>(props.params.get('queue') ?? 'all');
  const [status, setStatus] = useState<string>('unresolved');
  const [allPeriods, setAllPeriods] = useState(false);
  const [open, setOpen] = useState<string | undefined>();
  const [notice, setNotice] = useState<string | undefined>();
  const exceptions = useApi(
    () =>
      getJson<{ exceptions: ExceptionRecord[] }>('/v1/exceptions', {
        status,
        period: allPeriods ? undefined : props.period,
        queue: queue === 'all' ? undefined : queue,
        limit: '1000',
      }),
    [props.period, queue, status, allPeriods],
  );
  // The queue counts come from the unfiltered unresolved list, so each tab shows what waits in it.
  const waiting = useApi(
    () =>
      getJson<{ exceptions: ExceptionRecord[] }>('/v1/exceptions', {
        status: 'unresolved',
        period: allPeriods ? undefined : props.period,
        limit: '1000',
      }),
    [props.period, allPeriods, exceptions.data],
  );
  const r = report.data;
  const entities = r ? [...new Set(r.checkpoints.map((c) => c.legal_entity))] : [];
  return html`<div class="view" data-testid="view-reconciliation">
    <div class="view-head">
      <div>
        <h1>Reconciliation · ${props.period}</h1>
        <p class="muted">Every hand-off compared both ways, live. A red checkpoint lists its differences; recorded differences wait in the owning team's queue.</p>
      </div>
      ${r ? html`<${Pill} tone=${r.status === 'green' ? 'green' : 'red'} testid="recon-status">${r.status === 'green' ? 'All checkpoints green' : 'Differences found'}</${Pill}>` : null}
    </div>
    <${Status} loading=${report.loading && !r} error=${report.error} />
    ${r ? entities.map((entity) => html`<${Checkpoints} report=${r} entity=${entity} />`) : null}
    <${Card}
      title="Exception queues"
      subtitle=${props.admin ? 'Assign, then resolve with the correcting document or waive with a reason; every move is audited.' : 'Read-only: an admin key can assign, resolve and waive.'}
      testid="exceptions"
      wide
      actions=${exceptionFilters({ allPeriods, setAllPeriods, status, setStatus })}
    >
      <${QueueTabs} queue=${queue} setQueue=${setQueue} waiting=${waiting.data?.exceptions} />
      ${waiting.data && waiting.data.exceptions.length > 0 ? html`<${QueueChart} exceptions=${waiting.data.exceptions} />` : null}
      ${notice ? html`<div class="alert ok" role="status" data-testid="exception-notice">${notice}</div>` : null}
      <${Status} loading=${exceptions.loading && !exceptions.data} error=${exceptions.error} />
      ${exceptions.data && exceptions.data.exceptions.length === 0 ? html`<${Empty}>No ${status === 'unresolved' ? 'unresolved' : status} exceptions${allPeriods ? '' : ` in ${props.period}`}.</${Empty}>` : null}
      ${
        exceptions.data && exceptions.data.exceptions.length > 0
          ? html`<${ExceptionTable}
              exceptions=${exceptions.data.exceptions}
              open=${open}
              setOpen=${setOpen}
              admin=${props.admin}
              onDone=${(message: string) => {
                setNotice(message);
                exceptions.reload();
              }}
            />`
          : null
      }
    </${Card}>
  </div>`;
}

function Differences(props: { checkpoint: Reconciliation['checkpoints'][number] }) {
  const c = props.checkpoint;
  return html`<table class="data compact">
      <thead>
        <tr>
          <th>Difference</th>
          <th>Customer</th>
          <th>Item</th>
          <th class="num">Left</th>
          <th class="num">Right</th>
          <th class="num">Right − left</th>
        </tr>
      </thead>
      <tbody>
        ${c.differences.slice(0, 8).map(
          (d) =>
            html`<tr>
              <td>${d.kind.replace(/_/g, ' ')}</td>
              <td>${d.key.customer || '—'}</td>
              <td title=${d.key.item}>${shortId(d.key.item, 26)}</td>
              <td class="num">${reconAmount(d.left, c.checkpoint, d.key.currency)}</td>
              <td class="num">${reconAmount(d.right, c.checkpoint, d.key.currency)}</td>
              <td class="num"><b>${reconAmount(d.difference, c.checkpoint, d.key.currency)}</b></td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${c.differences.length > 8 ? html`<div class="muted small">and ${c.differences.length - 8} more</div>` : null}`;
}

function Checkpoints(props: { report: Reconciliation; entity: string }) {
  const { report: r, entity } = props;
  return html`<${Card} title=${`Checkpoints · ${entity}`} testid=${`checkpoints-${entity}`} wide>
            <div class="checkpoints">
              ${r.checkpoints
                .filter((c) => c.legal_entity === entity)
                .map(
                  (c) =>
                    html`<div
                      class=${`checkpoint ${c.status}`}
                      data-testid=${`checkpoint-${entity}-${c.checkpoint}${c.connector && c.connector !== 'ledger' ? `-${c.connector}` : ''}`}
                      data-status=${c.status}
                    >
                      <div class="checkpoint-head">
                        <span class="dot" aria-hidden="true"></span>
                        <b>${CHECKPOINT_LABELS[c.checkpoint] ?? c.checkpoint}</b>
                        ${c.connector ? html`<span class="muted">${c.connector}</span>` : null}
                      </div>
                      <div class="muted small">
                        ${count(c.compared.left)} ↔ ${count(c.compared.right)}
                        compared${c.pending ? `, ${count(c.pending)} waiting to post` : ''} ·
                        ${QUEUE_LABELS[c.owner_queue] ?? c.owner_queue}
                      </div>
                      ${c.differences.length ? html`<${Differences} checkpoint=${c} />` : null}
                    </div>`,
                )}
            </div>
          </${Card}>`;
}

function QueueTabs(props: { queue: string; setQueue: (queue: string) => void; waiting: ExceptionRecord[] | undefined }) {
  const { queue, setQueue } = props;
  const perQueue = (q: string) => (props.waiting ?? []).filter((e) => e.owner_queue === q).length;
  return html`<div class="tabs" role="tablist">
    <button role="tab" class=${queue === 'all' ? 'on' : ''} aria-selected=${queue === 'all'} onClick=${() => setQueue('all')}>
      All <span class="count">${props.waiting?.length ?? ''}</span>
    </button>
    ${QUEUES.map(
      (q) =>
        html`<button
          role="tab"
          class=${queue === q ? 'on' : ''}
          aria-selected=${queue === q}
          onClick=${() => setQueue(q)}
          data-testid=${`queue-${q}`}
        >
          ${QUEUE_LABELS[q]} <span class="count" data-testid=${`queue-count-${q}`}>${perQueue(q)}</span>
        </button>`,
    )}
  </div>`;
}

function QueueChart(props: { exceptions: ExceptionRecord[] }) {
  return html`<${ChartView}
    label="Unresolved exceptions per queue and status"
    height=${120}
    config=${{
      type: 'bar',
      data: {
        labels: QUEUES.map((q) => QUEUE_LABELS[q]!),
        datasets: [
          {
            label: 'Open',
            data: QUEUES.map((q) => props.exceptions.filter((e) => e.owner_queue === q && e.status === 'open').length),
            backgroundColor: '#dc2626',
          },
          {
            label: 'Assigned',
            data: QUEUES.map((q) => props.exceptions.filter((e) => e.owner_queue === q && e.status === 'assigned').length),
            backgroundColor: '#f59e0b',
          },
        ],
      },
      options: {
        indexAxis: 'y',
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
        scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true } },
      },
    }}
  />`;
}

function ExceptionTable(props: {
  exceptions: ExceptionRecord[];
  open: string | undefined;
  setOpen: (id: string | undefined) => void;
  admin: boolean;
  onDone: (message: string) => void;
}) {
  const { open, setOpen } = props;
  return html`<div class="table-wrap">
    <table class="data">
      <thead>
        <tr>
          <th>Exception</th>
          <th>Queue</th>
          <th>Entity</th>
          <th>Customer</th>
          <th>Item</th>
          <th class="num">Difference</th>
          <th>Status</th>
          <th>Owner</th>
          <th>Opened</th>
        </tr>
      </thead>
      <tbody>
        ${props.exceptions.map(
          (
            e,
          ) => html`<tr class=${`clickable ${open === e.id ? 'selected' : ''}`} onClick=${() => setOpen(open === e.id ? undefined : e.id)} data-testid=${`exception-${e.id}`}>
                    <td><b>${(e.kind ?? '').replace(/_/g, ' ')}</b><div class="muted small" title=${e.id}>${e.checkpoint ? (CHECKPOINT_LABELS[e.checkpoint] ?? e.checkpoint) : 'settlement'} · ${shortId(e.id, 18)}</div></td>
                    <td>${QUEUE_LABELS[e.owner_queue] ?? e.owner_queue}</td>
                    <td>${e.legal_entity ?? '—'}</td>
                    <td>${e.customer ?? '—'}</td>
                    <td title=${e.item ?? e.subject ?? ''}>${shortId(e.item ?? e.subject ?? '—', 24)}</td>
                    <td class="num" data-testid=${`exception-difference-${e.id}`}>${e.difference ? reconAmount(e.difference, e.checkpoint, e.currency) : '—'}</td>
                    <td><${Pill} tone=${STATUS_TONE[e.status]} testid=${`exception-status-${e.id}`}>${e.status}</${Pill}></td>
                    <td>${e.assigned_to ?? '—'}${e.resolution_document ? html`<div class="muted small">by ${e.resolution_document}</div>` : null}${e.waived_reason ? html`<div class="muted small">${e.waived_reason}</div>` : null}</td>
                    <td>${dateTime(e.created_at)}</td>
                  </tr>
                  ${
                    open === e.id && props.admin
                      ? html`<tr class="detail-row">
                          <td colspan="9">
                            <${ExceptionActions} exception=${e} onDone=${props.onDone} />
                          </td>
                        </tr>`
                      : null
                  }`,
        )}
      </tbody>
    </table>
  </div>`;
}

/** The filters above the exception queues: every period or this one, and which statuses. */
function exceptionFilters(props: {
  allPeriods: boolean;
  setAllPeriods: (all: boolean) => void;
  status: string;
  setStatus: (status: string) => void;
}) {
  const { allPeriods, setAllPeriods, status, setStatus } = props;
  return html`<label class="check"
      ><input
        type="checkbox"
        checked=${allPeriods}
        onChange=${(event: Event) => setAllPeriods((event.target as HTMLInputElement).checked)}
      />
      all periods</label
    >
    <select
      aria-label="Status"
      value=${status}
      onChange=${(e: Event) => setStatus((e.target as HTMLSelectElement).value)}
      data-testid="exception-status"
    >
      ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
    </select>`;
}

// Controls for the controller and the auditor: change requests waiting for a second person, each with the diff an
// approval applies; the latest decisions; the latest refusals (self-approval, no permission, decided already, stale),
// as the audit log records them. A key whose principal may approve sees Approve and Reject; the API refuses the rest.
import { useState } from 'preact/hooks';
import { ApiError, getJson, postJson } from '../api.js';
import { count, dateTime, duration, shortId } from '../format.js';
import type { ChangeRefusal, Controls, DecidedChange, PendingChange } from '../types.js';
import { Card, Empty, html, KpiCard, Pill, Status, useApi } from '../ui.js';

const DECISION_TONE = { approved: 'green', rejected: 'red', cancelled: 'grey' } as const;

function Diff(props: { text: string; id: string }) {
  const lines = props.text.split('\n');
  return html`<pre class="diff" data-testid=${`change-diff-${props.id}`}>
${lines.map((line) => {
      const tone = line.startsWith('@@')
        ? 'hunk'
        : line.startsWith('+') && !line.startsWith('+++')
          ? 'add'
          : line.startsWith('-') && !line.startsWith('---')
            ? 'del'
            : '';
      return html`<span class=${tone}>${`${line}\n`}</span>`;
    })}</pre>`;
}

function Decide(props: { change: PendingChange; onDone: (message: string) => void }) {
  const c = props.change;
  const [note, setNote] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const act = async (path: 'approve' | 'reject') => {
    setBusy(true);
    setError(undefined);
    try {
      await postJson(`/v1/changes/${encodeURIComponent(c.id)}/${path}`, note.trim() ? { note: note.trim() } : {});
      props.onDone(`Change ${c.id} ${path === 'approve' ? 'approved and applied' : 'rejected'}.`);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="actions-panel" data-testid=${`decide-${c.id}`}>
    <div class="inline">
      <input
        aria-label="Note"
        data-testid="decision-note"
        value=${note}
        placeholder="why (kept in the audit log)"
        onInput=${(ev: Event) => setNote((ev.target as HTMLInputElement).value)}
      />
      <button class="small primary" disabled=${busy} onClick=${() => void act('approve')} data-testid=${`change-approve-${c.id}`}>
        Approve
      </button>
      <button class="small" disabled=${busy} onClick=${() => void act('reject')} data-testid=${`change-reject-${c.id}`}>Reject</button>
    </div>
    ${error ? html`<div class="alert error" role="alert" data-testid="decision-error">${error}</div>` : null}
  </div>`;
}

function PendingTable(props: { pending: PendingChange[]; canApprove: boolean; onDone: (message: string) => void }) {
  const [open, setOpen] = useState<string | undefined>();
  return html`<div class="table-wrap">
    <table class="data">
      <thead>
        <tr>
          <th>Change</th>
          <th>Summary</th>
          <th>Entity</th>
          <th>Requested by</th>
          <th class="num">Waiting</th>
        </tr>
      </thead>
      <tbody>
        ${props.pending.map(
          (c) =>
            html`<tr
                class=${`clickable ${open === c.id ? 'selected' : ''}`}
                onClick=${() => setOpen(open === c.id ? undefined : c.id)}
                data-testid=${`change-row-${c.id}`}
              >
                <td>
                  <b>${c.kind}</b>
                  <div class="muted small" title=${c.id}>${c.id}</div>
                </td>
                <td>${c.summary}${c.reason ? html`<div class="muted small">${c.reason}</div>` : null}</td>
                <td>${c.legal_entity ?? 'every entity'}</td>
                <td>
                  ${c.requested_by_name}
                  <div class="muted small">${dateTime(c.requested_at)}</div>
                </td>
                <td class="num" data-testid=${`change-age-${c.id}`}>${duration(c.age_seconds)}</td>
              </tr>
              ${
                open === c.id
                  ? html`<tr class="detail-row">
                      <td colspan="5">
                        <${Diff} text=${c.diff || '(no diff)'} id=${c.id} />
                        ${props.canApprove ? html`<${Decide} change=${c} onDone=${props.onDone} />` : null}
                      </td>
                    </tr>`
                  : null
              }`,
        )}
      </tbody>
    </table>
  </div>`;
}

function DecisionTable(props: { decisions: DecidedChange[] }) {
  return html`<div class="table-wrap">
    <table class="data compact">
      <thead>
        <tr>
          <th>Change</th>
          <th>Summary</th>
          <th>Decision</th>
          <th>Requested by</th>
          <th>Decided by</th>
          <th>When</th>
        </tr>
      </thead>
      <tbody>
        ${props.decisions.map(
          (d) =>
            html`<tr data-testid=${`decision-${d.id}`}>
              <td><b>${d.kind}</b><div class="muted small">${d.id}</div></td>
              <td>${d.summary}${d.decision_note ? html`<div class="muted small">${d.decision_note}</div>` : null}</td>
              <td><${Pill} tone=${DECISION_TONE[d.status]} testid=${`decision-status-${d.id}`}>${d.status}</${Pill}></td>
              <td>${d.requested_by_name}</td>
              <td>${d.decided_by_name}</td>
              <td>${dateTime(d.decided_at)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function RefusalTable(props: { refusals: ChangeRefusal[] }) {
  return html`<div class="table-wrap">
    <table class="data compact">
      <thead>
        <tr>
          <th>When</th>
          <th>Who</th>
          <th>Tried</th>
          <th>Change</th>
          <th>Refused</th>
        </tr>
      </thead>
      <tbody>
        ${props.refusals.map(
          (r) =>
            html`<tr data-testid=${`refusal-${r.seq}`}>
              <td>${dateTime(r.at)}</td>
              <td title=${r.actor}>${r.by_name ?? r.actor}</td>
              <td>${r.attempted ?? '—'}</td>
              <td title=${r.subject}>${r.kind ?? ''}<div class="muted small">${shortId(r.subject, 28)}</div></td>
              <td>
                <${Pill} tone="red" testid=${`refusal-code-${r.seq}`}>${r.code ?? 'refused'}</${Pill}>
                ${r.message ? html`<div class="muted small">${r.message}</div>` : null}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

export function ControlsView(props: { canApprove: boolean }) {
  const view = useApi(() => getJson<Controls>('/v1/dashboard/controls'), []);
  const [notice, setNotice] = useState<string | undefined>();
  const v = view.data;
  return html`<div class="view" data-testid="view-controls">
    <div class="view-head">
      <div>
        <h1>Controls</h1>
        <p class="muted">
          Four eyes on what moves money: a change comes into force only when a controller other than its requester approves it. Every
          request, decision and refusal is in the audit log.
        </p>
      </div>
      ${v ? html`<${Pill} tone=${v.counts.pending > 0 ? 'amber' : 'green'} testid="controls-status">${v.counts.pending > 0 ? `${v.counts.pending} waiting` : 'Nothing waiting'}</${Pill}>` : null}
    </div>
    <${Status} loading=${view.loading && !v} error=${view.error} />
    ${
      v
        ? html`<div class="kpis" data-testid="controls-kpis">
            <${KpiCard}
              id="changes-pending"
              label="Waiting for approval"
              value=${count(v.counts.pending)}
              raw=${String(v.counts.pending)}
              hint=${v.oldest_pending_seconds === null ? 'none' : `oldest ${duration(v.oldest_pending_seconds)}`}
            />
            <${KpiCard} id="changes-approved" label="Approved" value=${count(v.counts.approved)} raw=${String(v.counts.approved)} />
            <${KpiCard} id="changes-rejected" label="Rejected" value=${count(v.counts.rejected)} raw=${String(v.counts.rejected)} />
            <${KpiCard} id="changes-cancelled" label="Cancelled" value=${count(v.counts.cancelled)} raw=${String(v.counts.cancelled)} />
            <${KpiCard}
              id="changes-refused"
              label="Refused attempts"
              value=${count(v.counts.refusals)}
              raw=${String(v.counts.refusals)}
              tone=${v.counts.refusals > 0 ? 'bad' : 'neutral'}
            />
          </div>`
        : null
    }
    ${
      v
        ? html`<${Sections}
            view=${v}
            canApprove=${props.canApprove}
            notice=${notice}
            onDone=${(message: string) => {
              setNotice(message);
              view.reload();
            }}
          />`
        : null
    }
  </div>`;
}

function Sections(props: { view: Controls; canApprove: boolean; notice: string | undefined; onDone: (message: string) => void }) {
  const v = props.view;
  return html`<${Card}
      title="Waiting for approval"
      subtitle=${props.canApprove ? 'Open a request to read its diff, then approve (it is applied at once) or reject it.' : 'Open a request to read its diff. Only a controller, other than its requester, may decide it.'}
      testid="changes-pending"
      wide
    >
      ${props.notice ? html`<div class="alert ok" role="status" data-testid="controls-notice">${props.notice}</div>` : null}
      ${v.pending.length === 0 ? html`<${Empty}>No change request is waiting.</${Empty}>` : html`<${PendingTable} pending=${v.pending} canApprove=${props.canApprove} onDone=${props.onDone} />`}
    </${Card}>
    <${Card} title="Recent decisions" subtitle="Approved, rejected and cancelled requests, newest first." testid="changes-decided" wide>
      ${v.decisions.length === 0 ? html`<${Empty}>No decision yet.</${Empty}>` : html`<${DecisionTable} decisions=${v.decisions} />`}
    </${Card}>
    <${Card} title="Recent refusals" subtitle="Proposals and decisions the controls refused, from the audit log." testid="changes-refused" wide>
      ${v.refusals.length === 0 ? html`<${Empty}>Nothing refused.</${Empty}>` : html`<${RefusalTable} refusals=${v.refusals} />`}
    </${Card}>`;
}

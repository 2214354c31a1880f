// Pipeline health for billing engineering: ingestion outcomes over time, quarantine, and per ERP connector the
// posting backlog and dead letters, which an admin key can put back in the outbox.
import { useState } from 'preact/hooks';
import { ApiError, getJson, postJson } from '../api.js';
import { count, dateTime, duration, groupDigits, shortId } from '../format.js';
import type { DeadLetter, Pipeline } from '../types.js';
import { Card, ChartView, Empty, html, KpiCard, Pill, Status, useApi, type Loaded } from '../ui.js';

const WINDOWS = [
  { hours: '1', label: 'Last hour' },
  { hours: '24', label: '24 hours' },
  { hours: '168', label: '7 days' },
  { hours: '720', label: '30 days' },
];

const OUTCOMES = [
  { key: 'accepted', label: 'Accepted', color: '#16a34a' },
  { key: 'duplicates', label: 'Duplicates', color: '#94a3b8' },
  { key: 'conflicts', label: 'Conflicts', color: '#db2777' },
  { key: 'rejected', label: 'Rejected', color: '#dc2626' },
  { key: 'quarantined', label: 'Quarantined', color: '#f59e0b' },
] as const;

function bucketLabel(at: string, bucket: Pipeline['window']['bucket']): string {
  return bucket === 'day' ? at.slice(5, 10) : bucket === 'hour' ? `${at.slice(5, 10)} ${at.slice(11, 13)}h` : at.slice(11, 16);
}

export function PipelineView(props: { admin: boolean; params: URLSearchParams }) {
  const [hours, setHours] = useState(props.params.get('hours') ?? '24');
  const health = useApi(() => getJson<Pipeline>('/v1/dashboard/pipeline', { hours }), [hours]);
  const dlq = useApi(() => getJson<{ dead_letters: DeadLetter[] }>('/v1/dlq'), []);
  const [notice, setNotice] = useState<{ tone: 'ok' | 'error'; text: string } | undefined>();
  const [busy, setBusy] = useState<string | undefined>();
  const replay = async (d: DeadLetter) => {
    setBusy(d.id);
    try {
      await postJson(`/v1/dlq/${encodeURIComponent(d.id)}/replay`);
      setNotice({
        tone: 'ok',
        text: `Dead letter ${d.id} (${d.target}) is back in the outbox; the next drain looks it up at ${d.target} before posting, so it posts at most once.`,
      });
      dlq.reload();
      health.reload();
    } catch (e) {
      setNotice({ tone: 'error', text: e instanceof ApiError ? e.message : String(e) });
    } finally {
      setBusy(undefined);
    }
  };
  const p = health.data;
  return html`<div class="view" data-testid="view-pipeline">
    <div class="view-head">
      <div>
        <h1>Pipeline health</h1>
        <p class="muted">Is usage coming in, is anything stuck? Ingestion by outcome, quarantine, and what waits for each ERP connector.</p>
      </div>
      <div class="segmented" role="group" aria-label="Window">
        ${WINDOWS.map((w) => html`<button class=${hours === w.hours ? 'on' : ''} onClick=${() => setHours(w.hours)} aria-pressed=${hours === w.hours}>${w.label}</button>`)}
      </div>
    </div>
    <${Status} loading=${health.loading && !p} error=${health.error} />
    ${
      p
        ? html`
            <${PipelineKpis} pipeline=${p} />
            <${IngestionChart} pipeline=${p} />
            <div class="grid two">
              <${Connectors} pipeline=${p} />
              <${Quarantine} pipeline=${p} />
            </div>
          `
        : null
    }
    <${DeadLetters} admin=${props.admin} dlq=${dlq} notice=${notice} busy=${busy} replay=${replay} />
  </div>`;
}

function PipelineKpis(props: { pipeline: Pipeline }) {
  const p = props.pipeline;
  return html`<div class="kpis">
    <${KpiCard}
      id="received"
      label="Events received"
      value=${count(p.ingestion.totals.received)}
      raw=${String(p.ingestion.totals.received)}
      hint=${`${count(p.ingestion.totals.batches)} batches`}
    />
    <${KpiCard}
      id="accepted"
      label="Accepted"
      value=${count(p.ingestion.totals.accepted)}
      raw=${String(p.ingestion.totals.accepted)}
      hint=${`${count(p.ingestion.totals.duplicates)} duplicates`}
    />
    <${KpiCard}
      id="rejected"
      label="Rejected or conflicting"
      value=${count(p.ingestion.totals.rejected + p.ingestion.totals.conflicts)}
      raw=${String(p.ingestion.totals.rejected + p.ingestion.totals.conflicts)}
      tone=${p.ingestion.totals.rejected + p.ingestion.totals.conflicts > 0 ? 'bad' : 'neutral'}
      hint="in this window"
    />
    <${KpiCard}
      id="rate"
      label="Ingestion rate"
      value=${`${groupDigits(p.ingestion.rate_per_second.last_5_minutes)} /s`}
      raw=${p.ingestion.rate_per_second.last_5_minutes}
      hint=${`last 5 min; ${groupDigits(p.ingestion.rate_per_second.last_hour)} /s over the hour`}
    />
    <${KpiCard}
      id="quarantine"
      label="Quarantined, waiting"
      value=${count(p.quarantine.pending)}
      raw=${String(p.quarantine.pending)}
      tone=${p.quarantine.pending > 0 ? 'bad' : 'good'}
      hint="replay after a catalog change"
    />
    <${KpiCard}
      id="backlog"
      label="ERP backlog"
      value=${count(p.connectors.reduce((s, c) => s + c.pending, 0))}
      raw=${String(p.connectors.reduce((s, c) => s + c.pending, 0))}
      hint="documents waiting to post"
    />
    <${KpiCard}
      id="dead"
      label="Dead letters"
      value=${count(p.connectors.reduce((s, c) => s + c.dead, 0))}
      raw=${String(p.connectors.reduce((s, c) => s + c.dead, 0))}
      tone=${p.connectors.some((c) => c.dead > 0) ? 'bad' : 'good'}
      hint="need a person"
    />
  </div>`;
}

function IngestionChart(props: { pipeline: Pipeline }) {
  const p = props.pipeline;
  return html`<${Card} title="Ingestion" subtitle=${`Events received per ${p.window.bucket}, by outcome (${dateTime(p.window.from)} to ${dateTime(p.window.to)})`} testid="chart-ingestion" wide>
            ${
              p.ingestion.series.length === 0
                ? html`<${Empty}>No events received in this window.</${Empty}>`
                : html`<${ChartView}
                    label="Usage events received over time by outcome"
                    height=${240}
                    config=${{
                      type: 'bar',
                      data: {
                        labels: p.ingestion.series.map((b) => bucketLabel(b.at, p.window.bucket)),
                        datasets: OUTCOMES.map((o) => ({
                          label: o.label,
                          data: p.ingestion.series.map((b) => b[o.key]),
                          backgroundColor: o.color,
                        })),
                      },
                      options: {
                        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
                        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
                      },
                    }}
                  />`
            }
          </${Card}>`;
}

function Connectors(props: { pipeline: Pipeline }) {
  const p = props.pipeline;
  return html`<${Card} title="ERP connectors" subtitle="The outbox per target: waiting, posted and dead" testid="connectors">
              ${
                p.connectors.length === 0
                  ? html`<${Empty}>No ERP target has documents yet (the built-in ledger is written with each invoice). Close with <code>--erp netsuite</code> to queue documents.</${Empty}>`
                  : html`<table class="data">
                        <thead>
                          <tr>
                            <th>Connector</th>
                            <th>Connection</th>
                            <th class="num">Backlog</th>
                            <th class="num">Waiting for a person</th>
                            <th class="num">Oldest waiting</th>
                            <th class="num">Posted</th>
                            <th class="num">Dead</th>
                            <th class="num">Replays</th>
                          </tr>
                        </thead>
                        <tbody>
                          ${p.connectors.map(
                            (c) =>
                              html`<tr data-testid=${`connector-${c.target}`}>
                                <td><b>${c.target}</b></td>
                                <td data-testid=${`connector-${c.target}-status`}>${connectionStatus(c)}</td>
                                <td class="num" data-testid=${`connector-${c.target}-pending`}>${count(c.pending)}</td>
                                <td class="num" data-testid=${`connector-${c.target}-waiting`}>
                                  ${c.waiting > 0 ? html`<${Pill} tone="amber">${count(c.waiting)}</${Pill}>` : '0'}
                                </td>
                                <td class="num">${c.oldest_pending_seconds === null ? '—' : duration(c.oldest_pending_seconds)}</td>
                                <td class="num" data-testid=${`connector-${c.target}-posted`}>${count(c.posted)}</td>
                                <td class="num" data-testid=${`connector-${c.target}-dead`}>
                                  ${c.dead > 0 ? html`<${Pill} tone="red">${count(c.dead)}</${Pill}>` : '0'}
                                </td>
                                <td class="num">${count(c.replays)}</td>
                              </tr>`,
                          )}
                        </tbody>
                      </table>
                      <${ChartView}
                        label="Outbox entries per connector by status"
                        height=${160}
                        config=${{
                          type: 'bar',
                          data: {
                            labels: p.connectors.map((c) => c.target),
                            datasets: [
                              { label: 'Posted', data: p.connectors.map((c) => c.posted), backgroundColor: '#16a34a' },
                              { label: 'Backlog', data: p.connectors.map((c) => c.pending), backgroundColor: '#f59e0b' },
                              { label: 'Dead', data: p.connectors.map((c) => c.dead), backgroundColor: '#dc2626' },
                            ],
                          },
                          options: {
                            indexAxis: 'y',
                            plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
                            scales: { x: { stacked: true, beginAtZero: true }, y: { stacked: true } },
                          },
                        }}
                      />`
              }
            </${Card}>`;
}

function Quarantine(props: { pipeline: Pipeline }) {
  const p = props.pipeline;
  return html`<${Card} title="Quarantine" subtitle="Events the catalog did not know (unknown type or subject), kept for replay" testid="quarantine">
              ${
                p.quarantine.pending === 0
                  ? html`<${Empty}>Nothing in quarantine.</${Empty}>`
                  : html`<table class="data">
                        <thead>
                          <tr>
                            <th>Reason</th>
                            <th class="num">Waiting</th>
                            <th>Oldest</th>
                          </tr>
                        </thead>
                        <tbody>
                          ${p.quarantine.by_reason.map(
                            (r) =>
                              html`<tr>
                                <td>${r.reason}</td>
                                <td class="num" data-testid=${`quarantine-${r.reason}`}>${count(r.pending)}</td>
                                <td>${dateTime(r.oldest)}</td>
                              </tr>`,
                          )}
                        </tbody>
                      </table>
                      <h3>Most recent</h3>
                      <ul class="plain">
                        ${p.quarantine.recent.map((q) => html`<li><code>${q.source}</code> <code>${q.id}</code> <span class="muted">${q.reason}, ${dateTime(q.received_at)}</span></li>`)}
                      </ul>`
              }
            </${Card}>`;
}

function DeadLetters(props: {
  admin: boolean;
  dlq: Loaded<{ dead_letters: DeadLetter[] }>;
  notice: { tone: 'ok' | 'error'; text: string } | undefined;
  busy: string | undefined;
  replay: (d: DeadLetter) => Promise<void>;
}) {
  const { dlq, notice, busy, replay } = props;
  return html`<${Card} title="Dead-letter queue" subtitle=${props.admin ? 'Fix the cause at the ERP, then replay: the document is looked up by its key before it is posted again.' : 'Read-only: an admin key can replay entries.'} testid="dlq" wide>
      ${notice ? html`<div class=${`alert ${notice.tone === 'ok' ? 'ok' : 'error'}`} role="status" data-testid="dlq-notice">${notice.text}</div>` : null}
      <${Status} loading=${dlq.loading && !dlq.data} error=${dlq.error} />
      ${dlq.data && dlq.data.dead_letters.length === 0 ? html`<${Empty}>The dead-letter queue is empty.</${Empty}>` : null}
      ${
        dlq.data && dlq.data.dead_letters.length > 0
          ? html`<div class="table-wrap">
              <table class="data">
                <thead>
                  <tr>
                    <th>Id</th>
                    <th>Connector</th>
                    <th>Document</th>
                    <th class="num">Attempts</th>
                    <th>Last error</th>
                    <th>Queued</th>
                    ${props.admin ? html`<th></th>` : null}
                  </tr>
                </thead>
                <tbody>
                  ${dlq.data.dead_letters.map(
                    (d) =>
                      html`<tr data-testid=${`dlq-row-${d.id}`}>
                        <td>${d.id}</td>
                        <td>${d.target}</td>
                        <td><code title=${d.document_id}>${shortId(d.document_id, 28)}</code></td>
                        <td class="num">${d.attempts}</td>
                        <td class="error-text">
                          ${d.last_error?.status ? html`<b>${d.last_error.status}${d.last_error.code ? ` ${d.last_error.code}` : ''}</b> ` : null}${d.last_error?.message ?? ''}
                        </td>
                        <td>${dateTime(d.created_at)}</td>
                        ${
                          props.admin
                            ? html`<td>
                                <button
                                  class="small"
                                  disabled=${busy === d.id}
                                  onClick=${() => replay(d)}
                                  data-testid=${`dlq-replay-${d.id}`}
                                >
                                  ${busy === d.id ? 'Replaying…' : 'Replay'}
                                </button>
                              </td>`
                            : null
                        }
                      </tr>`,
                  )}
                </tbody>
              </table>
            </div>`
          : null
      }
    </${Card}>`;
}

/** The connection cell of a connector row: its status, or why nothing posts now. */
function connectionStatus(c: Pipeline['connectors'][number]) {
  return c.status === null
    ? '—'
    : c.status === 'needs_reauthorization'
      ? html`<${Pill} tone="red">needs reauthorization: run accrue connect</${Pill}>`
      : c.parked_until !== null
        ? html`<${Pill} tone="amber">parked until ${c.parked_until.slice(0, 16).replace('T', ' ')} UTC</${Pill}>`
        : html`<${Pill} tone=${c.status === 'active' ? 'green' : 'grey'}>${c.status}</${Pill}>`;
}

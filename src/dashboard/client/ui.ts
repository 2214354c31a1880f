// Building blocks shared by the views: htm templates over Preact, a data hook, Chart.js charts, cards and tables.
import { h, type ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
} from 'chart.js';
import { ApiError } from './api.js';
import { trend } from './format.js';

Chart.register(LineController, BarController, LineElement, BarElement, PointElement, CategoryScale, LinearScale, Filler, Legend, Tooltip);
Chart.defaults.font.family = getComputedStyle(document.documentElement).getPropertyValue('--font').trim() || 'system-ui, sans-serif';
Chart.defaults.color = '#475467';
Chart.defaults.animation = false;

export const html = htm.bind(h);

export const PALETTE = ['#2563eb', '#f59e0b', '#7c3aed', '#0891b2', '#16a34a', '#dc2626', '#db2777', '#65a30d'];

export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  reload: () => void;
}

/** Loads on mount and whenever `deps` change; `reload` fetches again (after an action). */
export function useApi<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ data: s.data, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error: unknown) =>
        live && setState({ loading: false, error: error instanceof ApiError ? error.message : String((error as Error).message ?? error) }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

export function ChartView(props: { config: ChartConfiguration; height?: number; testid?: string; label: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!canvas.current) return;
    const chart = new Chart(canvas.current, {
      ...props.config,
      options: { responsive: true, maintainAspectRatio: false, ...props.config.options },
    });
    return () => chart.destroy();
  }, [JSON.stringify(props.config.data), props.config.type]);
  return html`<div class="chart" style=${{ height: `${props.height ?? 260}px` }} data-testid=${props.testid}>
    <canvas ref=${canvas} role="img" aria-label=${props.label}></canvas>
  </div>`;
}

export function Card(props: {
  title?: string;
  subtitle?: string;
  actions?: ComponentChildren;
  children: ComponentChildren;
  testid?: string;
  wide?: boolean;
}) {
  return html`<section class=${`card${props.wide ? ' wide' : ''}`} data-testid=${props.testid}>
    ${
      props.title || props.actions
        ? html`<header class="card-head">
            <div>
              ${props.title ? html`<h2>${props.title}</h2>` : null} ${props.subtitle ? html`<p class="muted">${props.subtitle}</p>` : null}
            </div>
            ${props.actions ? html`<div class="card-actions">${props.actions}</div>` : null}
          </header>`
        : null
    }
    ${props.children}
  </section>`;
}

export function KpiCard(props: {
  id: string;
  label: string;
  value: string;
  raw: string | null;
  previous?: string | null;
  hint?: string;
  tone?: 'good' | 'bad' | 'neutral';
  goodWhen?: 'up' | 'down';
}) {
  const t = props.previous === undefined ? null : trend(props.raw, props.previous);
  const good = t && props.goodWhen ? (t.direction === 'flat' ? null : t.direction === props.goodWhen) : null;
  return html`<div class=${`kpi ${props.tone ?? ''}`} data-testid=${`kpi-${props.id}`} data-value=${props.raw ?? ''}>
    <div class="kpi-label">${props.label}</div>
    <div class="kpi-value">${props.value}</div>
    ${
      t
        ? html`<div class=${`kpi-trend ${t.direction} ${good === null ? '' : good ? 'good' : 'bad'}`}>
            ${t.direction === 'up' ? '▲' : t.direction === 'down' ? '▼' : '■'} ${t.text}
          </div>`
        : html`<div class="kpi-trend muted">${props.hint ?? ' '}</div>`
    }
  </div>`;
}

export function Status(props: { loading: boolean; error: string | undefined }) {
  if (props.error) return html`<div class="alert error" role="alert" data-testid="error">${props.error}</div>`;
  if (props.loading) return html`<div class="loading" aria-busy="true">Loading…</div>`;
  return null;
}

export function Pill(props: { tone: 'green' | 'red' | 'amber' | 'grey' | 'blue'; children: ComponentChildren; testid?: string }) {
  return html`<span class=${`pill ${props.tone}`} data-testid=${props.testid}>${props.children}</span>`;
}

/** Numbers for drawing only: a decimal string becomes a float here and nowhere else. */
export const plot = (values: readonly string[]): number[] => values.map((v) => Number(v));

export function Empty(props: { children: ComponentChildren }) {
  return html`<p class="empty">${props.children}</p>`;
}

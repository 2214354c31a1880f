// Routes live in the URL hash (#/invoices/NWUS-000001?period=2026-11), so every view can be linked and reloaded.
export interface Route {
  view: string;
  id: string | undefined;
  params: URLSearchParams;
}

export function parseHash(): Route {
  const [path = '', query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [view = 'overview', ...rest] = path.split('/');
  return { view: view || 'overview', id: rest.length ? decodeURIComponent(rest.join('/')) : undefined, params: new URLSearchParams(query) };
}

export function href(view: string, id?: string, params: Record<string, string | undefined> = {}): string {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) query.set(k, v);
  const qs = query.toString();
  return `#/${view}${id ? `/${encodeURIComponent(id)}` : ''}${qs ? `?${qs}` : ''}`;
}

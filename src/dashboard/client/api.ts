// The JSON API as the dashboard calls it: the pasted key rides in the Authorization header, kept in sessionStorage
// (gone when the tab closes); failures come back as RFC 9457 problems and are shown with their field paths.
const KEY_STORAGE = 'accrue.apiKey';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: Array<{ path: string; code: string; message: string }>;
}

export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problemText(problem));
  }
}

export function problemText(p: Problem): string {
  const head = p.detail ?? p.title;
  const fields = (p.errors ?? []).map((e) => `${e.path || '(body)'}: ${e.message}`);
  return [head, ...fields].join('; ');
}

export const apiKey = {
  get: (): string | null => sessionStorage.getItem(KEY_STORAGE),
  set: (key: string) => sessionStorage.setItem(KEY_STORAGE, key),
  clear: () => sessionStorage.removeItem(KEY_STORAGE),
};

async function request(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${apiKey.get() ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) {
    const type = response.headers.get('content-type') ?? '';
    const problem: Problem = type.includes('json')
      ? await response.json()
      : { type: 'about:blank', title: response.statusText, status: response.status };
    throw new ApiError(problem);
  }
  return response;
}

export async function getJson<T>(path: string, query: Record<string, string | undefined> = {}): Promise<T> {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, v);
  const qs = params.toString();
  return (await request('GET', qs ? `${path}?${qs}` : path)).json() as Promise<T>;
}

export async function postJson<T>(path: string, body: unknown = {}): Promise<T> {
  return (await request('POST', path, body)).json() as Promise<T>;
}

/** Fetches a binary document with the key and opens it from a blob URL (a plain link could not carry the key). */
export async function openBlob(path: string): Promise<string> {
  const blob = await (await request('GET', path)).blob();
  return URL.createObjectURL(blob);
}

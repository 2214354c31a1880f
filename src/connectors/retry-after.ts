// HTTP Retry-After (RFC 9110 §10.2.3): either delay-seconds or an HTTP-date. Xero sends seconds (hours of them at
// its daily limit); other servers and proxies send a date.

/** Milliseconds to wait from `now`; undefined when absent or not a valid value; 0 for a date already past. */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  if (header === null || header === undefined) return undefined;
  const text = header.trim();
  if (/^\d{1,10}$/.test(text)) return Number.parseInt(text, 10) * 1000;
  // IMF-fixdate (Sun, 06 Nov 1994 08:49:37 GMT), and the obsolete RFC 850 and asctime forms Date.parse reads too.
  if (!/^[A-Za-z]{3}/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

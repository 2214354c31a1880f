// The dashboard's browser code, bundled by esbuild in memory the first time it is asked for and kept for the life of
// the process: no build step, no files written, and the API server serves it (no second server).
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface DashboardAssets {
  html: string;
  js: string;
  css: string;
  /** Content hash of the bundle, for ETags and cache busting. */
  version: string;
}

const ENTRY = fileURLToPath(new URL('./client/main.ts', import.meta.url));
let bundling: Promise<DashboardAssets> | undefined;

/** The bundle, built once; a failed build is not cached, so a fixed file is picked up on the next request. */
export function dashboardAssets(): Promise<DashboardAssets> {
  bundling ??= bundle().catch((error: unknown) => {
    bundling = undefined;
    throw error;
  });
  return bundling;
}

async function bundle(): Promise<DashboardAssets> {
  const result = await build({
    entryPoints: { app: ENTRY },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: true,
    legalComments: 'none',
    outdir: 'dashboard',
    logLevel: 'silent',
  });
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'))?.text;
  const css = result.outputFiles.find((f) => f.path.endsWith('.css'))?.text ?? '';
  if (js === undefined) throw new Error('the dashboard bundle has no JavaScript output');
  const version = createHash('sha256').update(js).update(css).digest('hex').slice(0, 16);
  return { html: page(version), js, css, version };
}

function page(version: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Accrue</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/app.css?v=${version}">
</head>
<body>
<div id="app"></div>
<script type="module" src="/dashboard/app.js?v=${version}"></script>
</body>
</html>
`;
}

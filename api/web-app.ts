import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpServer } from '../shared/http/index.ts';
import type { Logger } from '../shared/telemetry/index.ts';

/** Where `npm run build:web` (run by `npm ci` through `prepare`) puts the bundled page. */
export const WEB_DIST = fileURLToPath(new URL('./web/dist/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webmanifest': 'application/manifest+json',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The page only talks to its own origin, and never runs inline script: a message that slipped
 * past escaping still could not execute.
 */
const PAGE_HEADERS: Array<[string, string]> = [
  ['Content-Security-Policy', "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    + "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"],
  ['X-Content-Type-Options', 'nosniff'],
  ['Referrer-Policy', 'no-referrer'],
  ['Cache-Control', 'no-cache'],
];
/** Vite names assets by content hash, so they never change under their name. */
const ASSET_HEADERS: Array<[string, string]> = [
  ['X-Content-Type-Options', 'nosniff'],
  ['Cache-Control', 'public, max-age=31536000, immutable'],
];

/**
 * Serves the web chat page at `/` from the built bundle, each file at its own path with its
 * content type (read once at start: the bundle is small). Without a bundle, `/` says how to build it.
 */
export function serveWebApp(server: HttpServer, log: Logger, dist: string = WEB_DIST): void {
  const index = join(dist, 'index.html');
  if (!existsSync(index)) {
    log.warn({ dist }, 'web page not built: `/` explains how (npm run build:web)');
    serve(server, '/', 'text/html; charset=utf-8', Buffer.from(NOT_BUILT), PAGE_HEADERS);
    return;
  }
  for (const file of walk(dist)) {
    const path = '/' + relative(dist, file).split(sep).join('/');
    const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
    const body = readFileSync(file);
    if (path === '/index.html') serve(server, '/', type, body, PAGE_HEADERS);
    else serve(server, path, type, body, path.startsWith('/assets/') ? ASSET_HEADERS : PAGE_HEADERS);
  }
}

function serve(server: HttpServer, path: string, contentType: string, body: Buffer, headers: Array<[string, string]>): void {
  server.app.get(path, (res) => {
    res.cork(() => {
      res.writeHeader('Content-Type', contentType);
      res.writeHeader('X-Content-Type-Options', 'nosniff');
      for (const [k, v] of headers) res.writeHeader(k, v);
      res.end(body);
    });
  });
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : [full];
  });
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chat-svc</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem}code{background:#f3f3f3;padding:.1rem .3rem;border-radius:4px}</style>
</head><body>
<h1>chat-svc</h1>
<p>The web chat page is not built. <code>npm ci</code> builds it; after changing its sources run <code>npm run build:web</code> and restart.</p>
<p>The server itself is up: WebSocket at <code>/chat</code>, REST under <code>/v1/chat</code>
(<a href="/v1/openapi.json">OpenAPI</a>), <a href="/health/ready">readiness</a>, <a href="/metrics">metrics</a>.</p>
</body></html>`;

import type { Config } from '../shared/config/index.ts';
import type { HttpServer } from '../shared/http/index.ts';

/**
 * The page at `/`: what this server is and how to talk to it. (The full web chat client is its
 * own piece of work; until it lands, this page shows the way in.)
 */
export function serveWebPage(server: HttpServer, config: Config): void {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chat-svc</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem}code,pre{background:#f3f3f3;padding:.1rem .3rem;border-radius:4px}pre{padding:.8rem;overflow:auto}</style>
</head><body>
<h1>chat-svc</h1>
<p>A real-time chat server: WebSocket at <code>/chat</code> (JSON or msgpack frames), REST under <code>/v1/chat</code>
(<a href="/v1/openapi.json">OpenAPI</a>), <a href="/health/ready">readiness</a>, <a href="/metrics">metrics</a>.</p>
${config.auth.devTokens ? `<p>Development mode: get a token with <code>npm run -s chat -- token alice</code>, then in this page's console:</p>
<pre>const ws = new WebSocket(\`ws://\${location.host}/chat?token=\${TOKEN}\`);
ws.onmessage = (e) =&gt; console.log(JSON.parse(e.data));
ws.onopen = () =&gt; ws.send(JSON.stringify({ type: 'join_room', roomId: 'lobby' }));</pre>` : ''}
</body></html>`;
  server.app.get('/', (res) => {
    res.cork(() => res.writeHeader('content-type', 'text/html; charset=utf-8').end(html));
  });
}

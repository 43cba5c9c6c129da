import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { announce, exitOnSignals } from './simple-protocol.ts';

/**
 * The reference for the history scenario: a bare Fastify 5 route on the same path answering with
 * the same JSON document chat-svc returned (read once from BODY_FILE, serialized per request as a
 * route returning an object is). No auth, no store: the cost of HTTP + JSON on Node alone.
 */
const body = JSON.parse(readFileSync(process.env.BODY_FILE ?? '', 'utf8')) as object;
const app = Fastify({ logger: false });
app.get('/v1/chat/rooms/:roomId/messages', async () => body);
const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
announce('fastify-history', Number(new URL(address).port));
exitOnSignals(() => void app.close());

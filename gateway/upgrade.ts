import { randomUUID } from 'node:crypto';
import type { HttpRequest, HttpResponse, us_socket_context_t } from 'uWebSockets.js';
import { ChatError, ROOM_ID_PATTERN, toChatError, type ErrorCode } from '../shared/protocol/index.ts';
import { extractToken, type Authenticator, type Principal } from '../shared/auth/index.ts';
import type { HttpServer } from '../shared/http/index.ts';
import { metrics } from '../shared/telemetry/index.ts';
import { negotiateFormat, type Connection } from './connection.ts';

export interface UpgradeDeps {
  server: HttpServer;
  authenticator: Authenticator;
  draining(): boolean;
}

const ROOM_ID = new RegExp(ROOM_ID_PATTERN);
const DEVICES = ['web', 'mobile', 'desktop'];

/**
 * The WebSocket upgrade of `/chat` and `/ws`: the token (header or `?token=`), the encoding, the
 * seed-001 `?room=`; refusals answer with the REST error envelope, as any route of the server.
 */
export function upgradeHandler(deps: UpgradeDeps): (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => void {
  return (res, req, context) => {
    const url = req.getUrl();
    const queryString = req.getQuery() ?? '';
    const authorization = req.getHeader('authorization');
    const origin = req.getHeader('origin') || undefined;
    const key = req.getHeader('sec-websocket-key');
    const offered = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    let aborted = false;
    res.onAborted(() => { aborted = true; });

    const refuse = (code: ErrorCode, message: string) => {
      metrics.upgradesRejected.labels(code).inc();
      if (!aborted) deps.server.writeError(res, origin, new ChatError(code, message));
    };
    if (deps.draining()) return refuse('unavailable', 'server is draining; reconnect');

    const query = new URLSearchParams(queryString);
    const room = url === '/ws' ? query.get('room') ?? undefined : undefined;
    if (room !== undefined && !ROOM_ID.test(room)) return refuse('bad_request', 'room must match ' + ROOM_ID_PATTERN);
    const token = extractToken(authorization, queryString);
    const { format, protocol } = negotiateFormat(offered, query);
    const device = query.get('device') ?? undefined;

    const upgrade = (principal: Principal) => {
      const conn: Connection = {
        principal, connectionId: randomUUID(), format, legacy: room !== undefined, initialRoom: room,
        device: device && DEVICES.includes(device) ? device : undefined,
        rooms: new Set(), typing: undefined, queue: Promise.resolve(), closed: false, welcomed: false, openedAt: Date.now(),
      };
      res.upgrade(conn, key, protocol, extensions, context);
    };

    // Upgraded here, inside the handler, whenever the token can be decided now. Upgrading after an
    // await needs res.cork, and uWebSockets.js's cork can then drop the new socket without a close
    // frame (about 0.5% of a connect storm: issue 12, finding 11; upstream uWebSockets#1928, fixed
    // by #1929, not in the build we can run). Only a JWKS token seen for the first time waits.
    let principal: Principal | undefined;
    try {
      principal = deps.authenticator.verifyNow(token ?? '');
    } catch (err) {
      return refuse('unauthorized', toChatError(err).message);
    }
    if (principal !== undefined) return upgrade(principal);
    deps.authenticator.verify(token ?? '').then(
      (verified) => {
        if (aborted) return;
        if (deps.draining()) return refuse('unavailable', 'server is draining; reconnect');
        res.cork(() => upgrade(verified));
      },
      (err) => refuse('unauthorized', toChatError(err).message),
    );
  };
}

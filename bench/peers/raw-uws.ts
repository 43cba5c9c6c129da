import uWS, { type WebSocket } from 'uWebSockets.js';
import {
  announce, errorFrame, exitOnSignals, joinFrames, messageFrames, resumeAck, tokenFromQuery, verifyToken, welcomeFrame,
  type ClientRequest,
} from './simple-protocol.ts';

/**
 * Peer 1, the limit of the box: uWebSockets.js with nothing but topics. join = subscribe to the
 * room's topic, send = one `app.publish` of the frame to the topic. Same frames as chat-svc's JSON.
 */
interface Conn { userId: string; id: number }

const app = uWS.App();
let connections = 0;
const decoder = new TextDecoder();

app.ws<Conn>('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 256 * 1024,
  maxBackpressure: 1024 * 1024,
  closeOnBackpressureLimit: 1,
  idleTimeout: 600,
  sendPingsAutomatically: true,
  upgrade(res, req, context) {
    const key = req.getHeader('sec-websocket-key');
    const protocol = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const token = tokenFromQuery(req.getQuery() ?? '');
    let aborted = false;
    res.onAborted(() => { aborted = true; });
    verifyToken(token).then(
      (userId) => {
        if (aborted) return;
        res.cork(() => res.upgrade<Conn>({ userId, id: ++connections }, key, protocol, extensions, context));
      },
      () => {
        if (!aborted) res.cork(() => res.writeStatus('401 Unauthorized').end());
      },
    );
  },
  open(ws) {
    ws.send(JSON.stringify(welcomeFrame(ws.getUserData().userId, ws.getUserData().id)), false);
  },
  message(ws: WebSocket<Conn>, data) {
    let req: ClientRequest;
    try {
      req = JSON.parse(decoder.decode(data)) as ClientRequest;
    } catch {
      ws.send(JSON.stringify(errorFrame(undefined, 'not JSON')), false);
      return;
    }
    const { userId } = ws.getUserData();
    switch (req.type) {
      case 'send_message': {
        const { broadcast, ack } = messageFrames(userId, req);
        app.publish(`r:${req.roomId}`, JSON.stringify(broadcast), false);
        ws.send(JSON.stringify(ack), false);
        return;
      }
      case 'join_room': {
        const { broadcast, ack } = joinFrames(userId, req);
        ws.subscribe(`r:${req.roomId}`);
        app.publish(`r:${req.roomId}`, JSON.stringify(broadcast), false);
        ws.send(JSON.stringify(ack), false);
        return;
      }
      case 'resume':
        ws.send(JSON.stringify(resumeAck(req)), false);
        return;
      default:
        ws.send(JSON.stringify(errorFrame(req.ref, `unknown frame ${String(req.type)}`)), false);
    }
  },
});

app.listen('127.0.0.1', Number(process.env.PORT ?? 0), (token) => {
  if (!token) {
    process.stderr.write('raw-uws: could not listen\n');
    process.exit(1);
  }
  announce('raw-uws', uWS.us_socket_local_port(token));
  exitOnSignals(() => uWS.us_listen_socket_close(token));
});

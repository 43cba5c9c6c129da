import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  announce, errorFrame, exitOnSignals, joinFrames, messageFrames, resumeAck, verifyToken, welcomeFrame, type ClientRequest,
} from './simple-protocol.ts';

/**
 * Peer 2: the plain `ws` package, the way most Node chat servers start: a Set of sockets per room
 * and a loop that sends the frame to each (ws has no topics).
 */
const rooms = new Map<string, Set<WebSocket>>();
let connections = 0;

const http = createServer();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 256 * 1024 });

http.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  verifyToken(url.searchParams.get('token')).then(
    (userId) => wss.handleUpgrade(req, socket, head, (ws) => onOpen(ws, userId)),
    () => {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
    },
  );
});

function broadcast(roomId: string, frame: string): void {
  const members = rooms.get(roomId);
  if (!members) return;
  for (const ws of members) ws.send(frame);
}

function onOpen(ws: WebSocket, userId: string): void {
  const mine = new Set<string>();
  ws.send(JSON.stringify(welcomeFrame(userId, ++connections)));
  ws.on('message', (data: Buffer) => {
    let req: ClientRequest;
    try {
      req = JSON.parse(data.toString('utf8')) as ClientRequest;
    } catch {
      ws.send(JSON.stringify(errorFrame(undefined, 'not JSON')));
      return;
    }
    const roomId = req.roomId ?? '';
    switch (req.type) {
      case 'send_message': {
        const frames = messageFrames(userId, req);
        broadcast(roomId, JSON.stringify(frames.broadcast));
        ws.send(JSON.stringify(frames.ack));
        return;
      }
      case 'join_room': {
        let members = rooms.get(roomId);
        if (!members) rooms.set(roomId, (members = new Set()));
        members.add(ws);
        mine.add(roomId);
        const frames = joinFrames(userId, req);
        broadcast(roomId, JSON.stringify(frames.broadcast));
        ws.send(JSON.stringify(frames.ack));
        return;
      }
      case 'resume':
        ws.send(JSON.stringify(resumeAck(req)));
        return;
      default:
        ws.send(JSON.stringify(errorFrame(req.ref, `unknown frame ${String(req.type)}`)));
    }
  });
  ws.on('close', () => {
    for (const roomId of mine) {
      const members = rooms.get(roomId);
      members?.delete(ws);
      if (members?.size === 0) rooms.delete(roomId);
    }
  });
  ws.on('error', () => ws.terminate());
}

http.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const addr = http.address();
  announce('ws-server', typeof addr === 'object' && addr ? addr.port : 0);
  exitOnSignals(() => http.close());
});

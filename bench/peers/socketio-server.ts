import { once } from 'node:events';
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { announce, exitOnSignals, joinFrames, messageFrames, resumeAck, verifyToken, welcomeFrame, type ClientRequest } from './simple-protocol.ts';

/**
 * Peer 3: Socket.IO 4 used the idiomatic way: token in the handshake `auth`, rooms, `io.to(room).emit`,
 * acknowledgement callbacks. WebSocket transport only (the driver does not long-poll). The payload
 * objects are the same as the other peers' frames.
 *
 * With REDIS_URL it is one process of the distributed peer: `@socket.io/redis-adapter` (the adapter
 * the Socket.IO docs point to for several servers) on a publisher and a subscriber connection, so
 * `io.to(room).emit` reaches the room's members on every process.
 */
const http = createServer();
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, maxHttpBufferSize: 256 * 1024, serveClient: false });
const redisUrl = process.env.REDIS_URL;
const redis = redisUrl ? new Redis(redisUrl) : undefined;
const subscriber = redis?.duplicate();
if (redis && subscriber) {
  io.adapter(createAdapter(redis, subscriber));
  // listen only once both connections are up, so no broadcast of the first clients is lost
  await Promise.all([redis, subscriber].map((c) => (c.status === 'ready' ? undefined : once(c, 'ready'))));
}
let connections = 0;

io.use((socket, next) => {
  verifyToken((socket.handshake.auth as { token?: string }).token).then(
    (userId) => {
      socket.data.userId = userId;
      next();
    },
    () => next(new Error('unauthorized')),
  );
});

io.on('connection', (socket) => {
  const userId = socket.data.userId as string;
  socket.emit('welcome', welcomeFrame(userId, ++connections));
  socket.on('send_message', (req: ClientRequest, ack?: (body: unknown) => void) => {
    const frames = messageFrames(userId, req);
    io.to(req.roomId ?? '').emit('new_message', frames.broadcast);
    ack?.(frames.ack);
  });
  socket.on('join_room', (req: ClientRequest, ack?: (body: unknown) => void) => {
    const frames = joinFrames(userId, req);
    void socket.join(req.roomId ?? '');
    io.to(req.roomId ?? '').emit('user_joined', frames.broadcast);
    ack?.(frames.ack);
  });
  socket.on('resume', (req: ClientRequest, ack?: (body: unknown) => void) => {
    ack?.(resumeAck(req));
  });
});

http.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const addr = http.address();
  announce(redis ? 'socketio-redis-server' : 'socketio-server', typeof addr === 'object' && addr ? addr.port : 0);
  exitOnSignals(() => io.close());
});

import { Type } from '@sinclair/typebox';
import { publicRoom } from '../../shared/commands/index.ts';
import { keyOfRoom, type Room, type RoomMember } from '../../shared/domain/index.ts';
import { CHAT_PREFIX, type ApiDeps } from '../deps.ts';
import { listRooms } from '../room-list.ts';
import {
  ArchiveResult, CreateRoomBody, JoinResult, LeaveResult, ListRoomsQuery, OffsetPagination, RoomDetails, RoomIdParams, RoomListItem, UpdateRoomBody,
} from '../schemas.ts';

const tags = ['rooms'];

/** The room with the reader's place in it (seed 000's room plus isJoined, role and whether they archived it). */
export function roomDetails(room: Room, member: RoomMember | undefined, archivedAt?: string) {
  const joined = member !== undefined && !member.isBanned;
  return { ...(publicRoom(room) as Omit<Room, 'tenant'>), isJoined: joined, role: joined ? member.role : null, isArchived: joined && archivedAt !== undefined };
}

export function roomRoutes({ server, store, presence, rooms }: ApiDeps): void {
  server.route({
    method: 'get', path: `${CHAT_PREFIX}/rooms`, operationId: 'listRooms', tags,
    summary: 'Rooms you are in and rooms you can join, newest activity first',
    query: ListRoomsQuery,
    response: Type.Object({ rooms: Type.Array(RoomListItem), pagination: OffsetPagination }),
    handler: ({ principal, query }) => listRooms(store, presence, principal, query),
  });

  server.route({
    method: 'post', path: `${CHAT_PREFIX}/rooms`, operationId: 'createRoom', tags, status: 201,
    summary: 'Create a room; you become its owner (a direct room with the same person is returned if it exists; '
      + 'with matchId, the match\'s direct room: 201 when this call created it, 200 when it existed)',
    body: CreateRoomBody,
    response: RoomDetails,
    handler: async ({ principal, body, setStatus }) => {
      const { members, matchId, ...rest } = body;
      const input = { ...rest, ...(members ? { members: members.map((m) => (typeof m === 'string' ? { userId: m } : m)) } : {}) };
      if (matchId === undefined) {
        const room = await rooms.create(principal, input);
        return roomDetails(room, await store.getMember(keyOfRoom(room), principal.userId), await rooms.archivedAt(principal, room));
      }
      const { room, created } = await rooms.openMatch(principal, { ...input, matchId });
      if (!created) setStatus(200);
      const member = await store.getMember(keyOfRoom(room), principal.userId);
      return roomDetails(room, member, created ? undefined : await rooms.archivedAt(principal, room));
    },
  });

  server.route({
    method: 'get', path: `${CHAT_PREFIX}/rooms/:roomId`, operationId: 'getRoom', tags,
    summary: 'A room, with whether you joined it and your role',
    params: RoomIdParams,
    response: RoomDetails,
    handler: async ({ principal, params }) => {
      const { room, member } = await rooms.get(principal, params.roomId);
      return roomDetails(room, member, member ? await rooms.archivedAt(principal, room) : undefined);
    },
  });

  server.route({
    method: 'patch', path: `${CHAT_PREFIX}/rooms/:roomId`, operationId: 'updateRoom', tags,
    summary: 'Change name, description, images, tags, size or settings (admins and the owner)',
    params: RoomIdParams,
    body: UpdateRoomBody,
    response: RoomDetails,
    handler: async ({ principal, params, body }) => {
      const room = await rooms.update(principal, params.roomId, body);
      return roomDetails(room, await store.getMember(keyOfRoom(room), principal.userId), await rooms.archivedAt(principal, room));
    },
  });

  for (const archived of [true, false]) {
    server.route({
      method: 'post', path: `${CHAT_PREFIX}/rooms/:roomId/${archived ? 'archive' : 'unarchive'}`,
      operationId: archived ? 'archiveRoom' : 'unarchiveRoom', tags,
      summary: archived
        ? 'Archive a room for yourself: your room list hides it (other members\' lists do not change); idempotent'
        : 'Bring an archived room back into your room list; idempotent',
      params: RoomIdParams,
      response: ArchiveResult,
      handler: ({ principal, params }) => rooms.setArchived(principal, params.roomId, archived),
    });
  }

  server.route({
    method: 'post', path: `${CHAT_PREFIX}/rooms/:roomId/join`, operationId: 'joinRoom', tags,
    summary: 'Join a public or announcement room (idempotent)',
    params: RoomIdParams,
    response: JoinResult,
    handler: async ({ principal, params }) => {
      const { room, member } = await rooms.join(principal, params.roomId);
      return { roomId: room.roomId, joined: true as const, role: member.role, memberCount: room.memberCount };
    },
  });

  server.route({
    method: 'del', path: `${CHAT_PREFIX}/rooms/:roomId/leave`, operationId: 'leaveRoom', tags,
    summary: 'Leave a room; an owner leaving passes ownership on',
    params: RoomIdParams,
    response: LeaveResult,
    handler: async ({ principal, params }) => {
      await rooms.leave(principal, params.roomId);
      return { roomId: params.roomId, left: true as const };
    },
  });
}

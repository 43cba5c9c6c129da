import { Type } from '@sinclair/typebox';
import { CHAT_PREFIX, type ApiDeps } from '../deps.ts';
import {
  InviteBody, KickResult, MemberParams, MemberSchema, MemberWithPresence, OffsetPageQuery, OffsetPagination, RoomIdParams, SetRoleBody,
} from '../schemas.ts';

const tags = ['members'];
const path = `${CHAT_PREFIX}/rooms/:roomId/members`;

export function memberRoutes({ server, rooms, presence }: ApiDeps): void {
  server.route({
    method: 'get', path, operationId: 'listMembers', tags,
    summary: 'Members of a room, with whether each is online',
    params: RoomIdParams,
    query: Type.Object(OffsetPageQuery),
    response: Type.Object({ members: Type.Array(MemberWithPresence), pagination: OffsetPagination }),
    handler: async ({ principal, params, query }) => {
      const { members, total } = await rooms.members(principal, params.roomId, query);
      const online = new Map((await presence.get(principal.tenant, members.map((m) => m.userId))).map((p) => [p.userId, p]));
      return {
        members: members.map((m) => {
          const p = online.get(m.userId);
          return { ...m, isOnline: p !== undefined && p.status !== 'offline', lastSeen: p?.lastSeen ?? null };
        }),
        pagination: { total, limit: query.limit, offset: query.offset, hasMore: query.offset + members.length < total },
      };
    },
  });

  server.route({
    method: 'post', path, operationId: 'inviteMember', tags, status: 201,
    summary: 'Add someone to the room (moderators, or any member when invites are allowed)',
    params: RoomIdParams,
    body: InviteBody,
    response: MemberSchema,
    handler: ({ principal, params, body }) => rooms.invite(principal, params.roomId, body),
  });

  server.route({
    method: 'del', path: `${path}/:userId`, operationId: 'kickMember', tags,
    summary: 'Remove a member (moderators and above, over lower roles)',
    params: MemberParams,
    response: KickResult,
    handler: async ({ principal, params }) => {
      const removed = await rooms.kick(principal, params.roomId, params.userId);
      return { roomId: params.roomId, userId: removed.userId, removed: true as const };
    },
  });

  server.route({
    method: 'put', path: `${path}/:userId/role`, operationId: 'setMemberRole', tags,
    summary: 'Set a member\'s role (admins and the owner, below their own role)',
    params: MemberParams,
    body: SetRoleBody,
    response: MemberSchema,
    handler: ({ principal, params, body }) => rooms.setRole(principal, params.roomId, params.userId, body.role),
  });

  for (const [action, method, on] of [['mute', 'post', true], ['mute', 'del', false], ['ban', 'post', true], ['ban', 'del', false]] as const) {
    const verb = on ? action : `un${action}`;
    server.route({
      method, path: `${path}/:userId/${action}`, operationId: `${verb}Member`, tags,
      summary: action === 'mute'
        ? `${on ? 'Mute' : 'Unmute'} a member (moderators and above)`
        : `${on ? 'Ban' : 'Unban'} a user (moderators and above); a ban removes them and keeps them out`,
      params: MemberParams,
      response: MemberSchema,
      handler: ({ principal, params }) => action === 'mute'
        ? rooms.setMuted(principal, params.roomId, params.userId, on)
        : rooms.setBanned(principal, params.roomId, params.userId, on),
    });
  }
}

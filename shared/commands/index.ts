export { MessageCommands, AI_AUTHOR_ID, AI_AUTHOR_NAME, type MessageCommandDeps, type SendInput, type SendResult, type EventResult, type ReadMarkResult, type Issued } from './message-commands.ts';
export { RoomCommands, publicRoom, type CreateRoomInput, type UpdateRoomInput, type RoomCommandDeps, type RoomRates } from './room-commands.ts';
export { createStoreRoomAccess, createCachedRoomAccess, type RoomAccess } from './room-access.ts';
export { RoomGuard } from './room-guard.ts';
export { effectiveQuotas, TenantQuotaReader, QUOTA_CACHE_MS, type TenantQuotaSource } from './tenant-quotas.ts';

import type { Config } from '../shared/config/config.ts';
import type { Store } from '../shared/store/store.ts';
import type { Bus } from '../shared/bus/bus.ts';
import type { Presence } from '../shared/presence/presence.ts';
import type { MessageCommands, RoomCommands } from '../shared/chat/index.ts';
import type { HttpServer } from '../shared/http/index.ts';
import type { Logger } from '../shared/telemetry/logger.ts';

/** What the api tier is built from; `startApi` receives it and hands it to each route group. */
export interface ApiDeps {
  server: HttpServer;
  config: Config;
  store: Store;
  bus: Bus;
  presence: Presence;
  rooms: RoomCommands;
  messages: MessageCommands;
  log: Logger;
}

export const CHAT_PREFIX = '/v1/chat';

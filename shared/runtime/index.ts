export { buildAdapters, messageCommands, roomCommands, type Adapters } from './adapters.ts';
export { onShutdown, exitOnLostNodeId, EXIT_NODE_ID_LOST, SHUTDOWN_MARGIN_MS, SHUTTING_DOWN, type ShutdownPlan } from './shutdown.ts';
export { addDependencyChecks } from './readiness-checks.ts';
export { attachmentStorage, type AttachmentStorage } from './attachment-storage.ts';

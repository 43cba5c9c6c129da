export * from './errors.ts';
export * from './frames.ts';
export * from './codec.ts';
export { eventToFrame } from './event-frames.ts';
export { newMessageFrameMsgpack } from './message-frame-splice.ts';
export { MAX_NESTING_DEPTH, plainDataProblem } from './plain-data.ts';

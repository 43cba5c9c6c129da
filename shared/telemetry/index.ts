export { createLogger, silentLogger, type Logger } from './logger.ts';
export { registry, metrics } from './metrics.ts';

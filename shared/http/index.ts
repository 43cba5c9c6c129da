export { createHttpServer, type HttpServer, type HttpServerOptions } from './http-server.ts';
export type { RouteDef, RouteContext, HttpMethod, RequestHeaders, HeldRouteDef, HeldContext, HeldResponse, BinaryRouteDef, BinaryContext, BinaryAnswer, RequestBody } from './route.ts';
export type { HeaderList } from './reply.ts';
export { JsonText } from './json-text.ts';
export type { Dependency } from './readiness.ts';

export { createHttpServer, type HttpServer, type HttpServerOptions } from './http-server.ts';
export type { RouteDef, RouteContext, HttpMethod, RequestHeaders } from './route.ts';

import type { TSchema } from '@sinclair/typebox';
import { ERROR_CODES, errorMapping, type ErrorCode } from '../protocol/errors.ts';
import type { RouteBase } from './route.ts';

/** What the OpenAPI document needs to know about one route, of any kind. */
export interface DocRoute extends Omit<RouteBase<TSchema>, 'headers'> {
  auth: boolean;
  params?: TSchema;
  body?: TSchema;
  response?: TSchema;
  status: number;
  /** false: the body is the response schema itself (health probes), or of `contentType` (`text/plain`, `text/event-stream`). */
  envelope: boolean;
  contentType?: string;
  /** Whether failures answer with the error envelope (default: `envelope`). */
  errors?: boolean;
  /** The request body is bytes of this type (an upload), not JSON. */
  bodyContentType?: string;
  /** Error codes the route may answer besides the usual ones. */
  moreErrors?: ErrorCode[];
}

type Json = Record<string, unknown>;

const ERROR_ENVELOPE = 'ErrorEnvelope';

/**
 * Builds the OpenAPI 3.1 document from the routes' TypeBox schemas (which are JSON Schema 2020-12,
 * the dialect 3.1 uses). Schemas carrying `$id` are hoisted into `components.schemas` and
 * referenced, so a Message or Room appears once however many routes return it.
 */
export function buildOpenApi(info: { title: string; version: string }, routes: readonly DocRoute[]): Json {
  const components: Record<string, Json> = {
    [ERROR_ENVELOPE]: {
      type: 'object',
      required: ['success', 'error'],
      properties: {
        success: { const: false },
        error: {
          type: 'object',
          required: ['code', 'message'],
          properties: {
            code: { enum: [...ERROR_CODES] },
            message: { type: 'string' },
            details: { type: 'object' },
          },
        },
      },
    },
  };
  const paths: Record<string, Json> = {};
  const ordered = [...routes].sort((a, b) => a.path.localeCompare(b.path));
  for (const route of ordered) {
    const path = route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const item = (paths[path] ??= {});
    item[route.method === 'del' ? 'delete' : route.method] = operation(route, components);
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: {
      schemas: components,
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    },
    security: [{ bearerAuth: [] }],
  };
}

function operation(route: DocRoute, components: Record<string, Json>): Json {
  const parameters = [
    ...objectParameters(route.params, 'path', components),
    ...objectParameters(route.query, 'query', components),
  ];
  const op: Json = {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    ...(route.tags?.length ? { tags: route.tags } : {}),
    ...(parameters.length ? { parameters } : {}),
  };
  if (route.body) {
    op['requestBody'] = { required: true, content: { 'application/json': { schema: toJsonSchema(route.body, components) } } };
  } else if (route.bodyContentType) {
    op['requestBody'] = { required: true, content: { [route.bodyContentType]: { schema: { type: 'string', format: 'binary' } } } };
  }
  const success = route.response ? toJsonSchema(route.response, components) : {};
  const content = route.contentType !== undefined && route.contentType !== 'application/json'
    ? { [route.contentType]: { schema: route.contentType.startsWith('text/') ? { type: 'string' } : { type: 'string', format: 'binary' } } }
    : {
        'application/json': {
          schema: route.envelope
            ? { type: 'object', required: ['success', 'data'], properties: { success: { const: true }, data: success } }
            : success,
        },
      };
  const responses: Json = { [String(route.status)]: { description: 'success', content } };
  for (const status of errorStatuses(route)) {
    responses[String(status)] = {
      description: 'error',
      content: { 'application/json': { schema: { $ref: `#/components/schemas/${ERROR_ENVELOPE}` } } },
    };
  }
  op['responses'] = responses;
  if (!route.auth) op['security'] = [];
  return op;
}

function errorStatuses(route: DocRoute): number[] {
  if (!(route.errors ?? route.envelope)) return [];
  const statuses = new Set<number>([errorMapping('internal').http]);
  if (route.params || route.query || route.body) statuses.add(errorMapping('bad_request').http);
  if (route.body) statuses.add(errorMapping('too_large').http);
  for (const code of route.moreErrors ?? []) statuses.add(errorMapping(code).http);
  if (route.auth) {
    statuses.add(errorMapping('unauthorized').http);
    statuses.add(errorMapping('forbidden').http);
    statuses.add(errorMapping('not_found').http);
  }
  return [...statuses].sort((a, b) => a - b);
}

function objectParameters(schema: TSchema | undefined, location: 'path' | 'query', components: Record<string, Json>): Json[] {
  if (!schema) return [];
  const props = (schema as { properties?: Record<string, TSchema> }).properties ?? {};
  const required = new Set((schema as { required?: string[] }).required ?? []);
  return Object.entries(props).map(([name, prop]) => {
    const json = toJsonSchema(prop, components);
    const description = typeof json['description'] === 'string' ? json['description'] : undefined;
    return {
      name,
      in: location,
      required: location === 'path' || (required.has(name) && json['default'] === undefined),
      ...(description ? { description } : {}),
      schema: json,
    };
  });
}

/** A TypeBox schema without its symbol keys (Kind, Optional), every `$id` schema moved to `components.schemas`. */
function toJsonSchema(schema: TSchema, components: Record<string, Json>): Json {
  return hoist(JSON.parse(JSON.stringify(schema)) as Json, components);
}

function hoist(node: Json, components: Record<string, Json>): Json {
  const id = node['$id'];
  const walked: Json = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$id') continue;
    walked[key] = walk(value, components);
  }
  if (typeof id !== 'string') return walked;
  components[id] ??= walked;
  return { $ref: `#/components/schemas/${id}` };
}

function walk(value: unknown, components: Record<string, Json>): unknown {
  if (Array.isArray(value)) return value.map((v) => walk(v, components));
  if (value && typeof value === 'object') return hoist(value as Json, components);
  return value;
}

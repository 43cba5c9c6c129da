import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { buildOpenApi, type DocRoute } from './openapi.ts';
import type { RouteBase } from './route.ts';

/** The schemas of a route, compiled once at registration. */
export interface CompiledRoute {
  /** The metrics label: the path pattern, so that ids do not multiply the series. */
  label: string;
  paramNames: string[];
  params: TypeCheck<TSchema> | undefined;
  query: TypeCheck<TSchema> | undefined;
}

/**
 * Every route the server registered, of every kind: refuses a route registered twice or whose
 * path and params disagree, compiles its schemas, and documents it in the OpenAPI document.
 */
export class RouteTable {
  private readonly docs: DocRoute[] = [];
  private doc: Record<string, unknown> | undefined;

  constructor(private readonly info: { title: string; version: string }) {}

  add(def: RouteBase<TSchema> & { params?: TSchema }, doc: Omit<DocRoute, 'method' | 'path' | 'operationId' | 'summary'>): CompiledRoute {
    if (this.docs.some((d) => d.operationId === def.operationId || (d.method === def.method && d.path === def.path))) {
      throw new Error(`route ${def.operationId} (${def.method} ${def.path}) is registered twice`);
    }
    const paramNames = [...def.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
    const declared = Object.keys((def.params as { properties?: object } | undefined)?.properties ?? {});
    const missing = paramNames.filter((n) => !declared.includes(n));
    if (def.params ? missing.length || declared.length !== paramNames.length : paramNames.length) {
      throw new Error(`route ${def.operationId}: params schema must declare exactly ${paramNames.join(', ') || 'nothing'}`);
    }
    this.docs.push({
      method: def.method, path: def.path, operationId: def.operationId, summary: def.summary,
      ...(def.description ? { description: def.description } : {}),
      ...(def.tags ? { tags: def.tags } : {}),
      ...(def.params ? { params: def.params } : {}),
      ...(def.query ? { query: def.query } : {}),
      ...doc,
    });
    this.doc = undefined;
    return {
      label: def.path,
      paramNames,
      params: def.params ? TypeCompiler.Compile(def.params) : undefined,
      query: def.query ? TypeCompiler.Compile(def.query) : undefined,
    };
  }

  openapi(): Record<string, unknown> {
    this.doc ??= buildOpenApi(this.info, this.docs);
    return this.doc;
  }
}

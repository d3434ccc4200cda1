import { z } from 'zod';
import { apiOperation } from '../../auth/permissions.js';
import type { ApiRoute } from './route.js';

const ERROR_BODY = {
  type: 'object',
  properties: {
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { code: { type: 'string' }, message: { type: 'string' }, detail: {} },
        required: ['code', 'message'],
      },
    },
  },
};

/** OpenAPI 3.1 for the admin API, generated from the route table and its zod body schemas. */
export function openApiDocument(routes: ApiRoute[], prefix: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const schemas: Record<string, unknown> = {};
  for (const route of routes) {
    const path = `${prefix}${route.path.replace(/:(\w+)/g, '{$1}')}`;
    const parameters = [
      ...[...route.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })),
      ...Object.entries(route.query?.shape ?? {}).map(([name, schema]) => queryParameter(name, schema as z.ZodType)),
    ];
    const status = String(route.status ?? 200);
    const { access, needs } = apiOperation(route.method, route.path);
    (paths[path] ??= {})[route.method.toLowerCase()] = {
      summary: route.summary,
      'x-berth-access': access,
      'x-berth-needs': needs,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(route.body, { io: 'input' }) } } } }
        : {}),
      responses: {
        [status]: {
          description: status === '204' ? 'done' : 'success',
          ...(route.response ? { content: { 'application/json': { schema: responseSchema(route.response, schemas) } } } : {}),
        },
        default: { description: 'error', content: { 'application/json': { schema: ERROR_BODY } } },
      },
      ...(access === 'public' ? { security: [] } : {}),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Berth admin API',
      version: '1',
      description: 'Users, projects, members, robot accounts, the audit log, garbage collection and storage usage. See docs/security.md.',
    },
    components: {
      schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))),
      securitySchemes: { basic: { type: 'http', scheme: 'basic' }, bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    },
    security: [{ basic: [] }, { bearer: [] }],
    paths,
  };
}

/** An optional query parameter, its schema and description from the route's zod query object. */
function queryParameter(name: string, schema: z.ZodType): Record<string, unknown> {
  const { description, ...json } = z.toJSONSchema(schema, { io: 'input' }) as { description?: string } & Record<string, unknown>;
  delete json.$schema;
  return { name, in: 'query', required: false, ...(description ? { description } : {}), schema: json };
}

/**
 * A response body's JSON Schema; the parts named with `.meta({ id })` go to components.schemas
 * (collected in `schemas`) and are referenced from there.
 */
function responseSchema(schema: z.ZodType, schemas: Record<string, unknown>): unknown {
  const {
    $schema: _,
    $defs,
    ...json
  } = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as { $schema?: string; $defs?: Record<string, unknown> } & Record<
    string,
    unknown
  >;
  for (const [id, def] of Object.entries($defs ?? {})) schemas[id] = toComponentRefs(def);
  return toComponentRefs(json);
}

function toComponentRefs(json: unknown): unknown {
  return JSON.parse(JSON.stringify(json).replaceAll('"#/$defs/', '"#/components/schemas/')) as unknown;
}

// Building blocks of the /api/v1 response schemas (ApiRoute.response): what the handlers send,
// as JSON carries it. A schema given an id (`.meta({ id })`) becomes components.schemas.<id> in
// openapi.json and components['schemas']['<id>'] in the web UI's generated types.
// Module-level schemas of src/http/api/*.ts are wrapped in z.lazy(() => …): built at their
// first parse or at the first GET /openapi.json, not at start (issue 19: ~0.9 MB of heap in every
// idle worker). The OpenAPI document is the same. Query objects (`.shape` is read) and schemas
// that are `.extend`ed stay plain.
import { z } from 'zod';
import { ROLES } from '../../auth/permissions.js';

/** An RFC 3339 time as JSON carries a Date (toISOString). */
export const Timestamp = z.lazy(() => z.string().describe('RFC 3339 time (UTC)'));

export const Role = z.lazy(() => z.enum(ROLES));

/** Schedule of a background job or policy: every N ms or a cron expression. */
export const JobSchedule = z.lazy(() => z.union([z.strictObject({ everyMs: z.number() }), z.strictObject({ cron: z.string() })]));

/** Any JSON value (a document the API passes through, a job-specific summary). */
export const Json = z.lazy(() => z.unknown());

export const Quota = z
  .strictObject({
    project: z.string(),
    used: z.number().describe('bytes the project uses (deduplicated)'),
    limit: z.number().nullable().describe('bytes allowed; null: unlimited'),
    percent: z.number().nullable().describe('used / limit in %, one decimal; null when unlimited'),
  })
  .meta({ id: 'Quota' });

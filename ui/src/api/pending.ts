// Endpoints of the UI contract (docs/ui.md) that the served OpenAPI document does not describe
// yet: typed here in openapi-typescript's shape so the client is checked the same way. Each entry
// is dropped when `npm run ui:api` brings it into schema.d.ts (an entry that is in both is an
// intersection and still type-checks).
import type { ErrorBody } from './client-types';

type Json<T> = { content: { 'application/json': T } };
type Responses = { 200: { headers: Record<string, unknown>; content?: never }; default: { headers: Record<string, unknown> } & Json<ErrorBody> };
type Params<P, Q> = { query?: Q; header?: never; cookie?: never } & ([P] extends [never] ? { path?: never } : { path: P });
type Op<P = never, Q = never, B = never> = { parameters: Params<P, Q>; responses: Responses } & ([B] extends [never] ? { requestBody?: never } : { requestBody: Json<B> });
type Item<T> = { parameters: { query?: never; header?: never; path?: never; cookie?: never } } & T;
type Listing = { q?: string; sort?: string; order?: 'asc' | 'desc'; n?: number; last?: string };

export interface PendingPaths {
  '/api/v1/system/info': Item<{ get: Op }>;
  '/api/v1/search': Item<{ get: Op<never, { q: string; n?: number }> }>;
  '/api/v1/projects/{project}/repositories': Item<{ get: Op<{ project: string }, Listing> }>;
  '/api/v1/repositories/{name}': Item<{ delete: Op<{ name: string }> }>;
  '/api/v1/repositories/{name}/tags': Item<{ get: Op<{ name: string }, Listing> }>;
  '/api/v1/repositories/{name}/tags/delete': Item<{ post: Op<{ name: string }, never, { tags: string[] }> }>;
  '/api/v1/repositories/{name}/artifacts/{reference}': Item<{ get: Op<{ name: string; reference: string }> }>;
  '/api/v1/jobs/{name}/run': Item<{ post: Op<{ name: string }> }>;
}

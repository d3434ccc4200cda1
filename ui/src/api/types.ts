// Response bodies of the /api/v1 endpoints the UI reads: aliases of the types generated from
// openapi.json (schema.d.ts, `npm run ui:api`), whose response schemas the server checks its
// answers against in the tests (src/http/api/*, ApiRoute.response).
import type { components } from './schema';

type Schemas = components['schemas'];

export type Session = Schemas['Session'];
export type Me = Schemas['Me'];
export type SystemInfo = Schemas['SystemInfo'];

/** A keyset page of the browse listings (RepositoryPage, TagPage). */
export interface Page<T> {
  items: T[];
  next: string | null;
  total: number;
}

export type Project = Schemas['Project'];
export type ProjectDetail = Schemas['ProjectDetail'];
export type Quota = Schemas['Quota'];
export type RepositoryRow = Schemas['RepositoryRow'];
export type Platform = Schemas['Platform'];
export type TagRow = Schemas['TagRow'];
export type RepositoryDeleted = Schemas['RepositoryDeleted'];
/** annotations are always sent ({} when none); optional here so fixtures may leave them out. */
export type Descriptor = Omit<Schemas['Artifact']['layers'][number], 'annotations'> & { annotations?: Record<string, string> };
export type Referrer = Omit<Schemas['Referrer'], 'annotations'> & { annotations?: Record<string, string> };
/** An image config, or whatever JSON the config blob holds (the schema says unknown: any JSON ≤ 1 MiB, else null). */
export type ArtifactConfig = Record<string, unknown>;
export type Artifact = Omit<Schemas['Artifact'], 'config' | 'layers' | 'referrers'> & {
  config: ArtifactConfig | null;
  layers: Descriptor[];
  referrers: Referrer[];
};
export type SearchResult = Schemas['SearchResult'];
export type BatchDelete = Schemas['TagsDeleted'];
export type Member = Schemas['Member'];
export type RobotWithSecret = Schemas['RobotWithSecret'];
/** A robot as listed; the answer that creates one also carries its secret (RobotWithSecret). */
export type Robot = Schemas['Robot'] & { secret?: string };
export type ImmutableRule = Schemas['ImmutableRule'];
type GeneratedRule = Schemas['RetentionPolicy']['rules'][number];
/** One rule: count for the latest… templates, days for the nDays… ones (the generated type is their union). */
export type RetentionRule = Omit<GeneratedRule, 'count' | 'days'> & { count?: number; days?: number };
export type RetentionPolicy = Omit<Schemas['RetentionPolicy'], 'rules'> & { rules: RetentionRule[] };
export type RetentionRun = Schemas['RetentionRun'];
export type Webhook = Schemas['WebhookPolicy'];
export type Delivery = Schemas['WebhookDelivery'];
export type SignatureStatus = Schemas['SignatureStatus'];
export type VulnReport = Schemas['VulnerabilityReport'];
export type TagHistoryEntry = Schemas['TagHistoryEntry'];
export type User = Schemas['User'];
export type Job = Schemas['Job'];
export type JobRun = Schemas['JobRun'];
export type AuditEntry = Schemas['AuditEntry'];
export type WebhookPolicy = Schemas['WebhookPolicy'];
export type RegistryEndpoint = Schemas['RegistryEndpoint'];
export type PingResult = Schemas['RegistryPing'];
export type ReplicationPolicy = Schemas['ReplicationPolicy'];
export type ReplicationExecution = Schemas['ReplicationExecution'];
export type ReplicationTask = Schemas['ReplicationTask'];
export type ProxyBinding = Schemas['ProxyCacheProject'];
export type SignaturePolicy = Schemas['SignaturePolicy'];
export type VulnPolicy = Schemas['VulnerabilityPolicy'];

import type { Generated } from 'kysely';

/** Row types of the metadata schema (see migrations/ for the DDL). Times are epoch milliseconds. */
export interface Database {
  repositories: { id: Generated<number>; name: string; created_at: number };
  blobs: { digest: string; size: number; created_at: number };
  repository_blobs: { repository_id: number; digest: string; created_at: number };
  manifests: {
    repository_id: number;
    digest: string;
    media_type: string;
    artifact_type: string | null;
    subject_digest: string | null;
    annotations: string | null;
    size: number;
    payload: Buffer;
    created_at: number;
  };
  manifest_references: { repository_id: number; manifest_digest: string; child_digest: string; kind: string };
  tags: { repository_id: number; name: string; manifest_digest: string; updated_at: number };
  uploads: {
    id: string;
    repository: string;
    size: number;
    staging: string | null;
    created_at: number;
    updated_at: number;
    writer: string | null;
    writer_until: number | null;
  };
  upload_receipts: { id: string; repository: string; digest: string; finished_at: number };
}

import { deny, type Hook, type HookName, type Policy } from '../core/policies.js';

export const READ_ONLY_POLICY = 'read-only';

const WRITE_HOOKS = [
  'upload.start',
  'blob.commit',
  'blob.mount',
  'blob.delete',
  'manifest.put',
  'tag.put',
  'manifest.delete',
  'tag.delete',
] as const satisfies readonly HookName[];

/**
 * storage.maintenance.readonly.enabled (as CNCF Distribution names it): every write — upload,
 * mount, manifest or tag push, delete — is refused with 405 UNSUPPORTED while pulls go on,
 * e.g. during a migration or a storage maintenance window. Background jobs (GC, purges) keep
 * running: they remove only what no client can see.
 */
export function readOnlyPolicy(): Policy {
  const refuse: Hook<HookName> = () => {
    throw deny(
      READ_ONLY_POLICY,
      'UNSUPPORTED',
      'the registry is in read-only mode (storage.maintenance.readonly.enabled): pulls work, pushes and deletes are refused',
    );
  };
  return { name: READ_ONLY_POLICY, hooks: Object.fromEntries(WRITE_HOOKS.map((hook) => [hook, refuse])) };
}

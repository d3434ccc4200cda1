import type { Logger } from 'pino';
import type { ProjectRows, UserRows } from './ports.js';

/** Orphan names read per query. */
const PAGE = 1000;
/** Repository names a log line shows per adopted project. */
const SHOWN = 5;

export interface Adoption {
  project: string;
  /** Orphan repositories in it when it was adopted. */
  repositories: number;
  /** The project-admin it was given (the configured admin, when that user exists and is an admin). */
  owner: string | null;
  /** False when another replica starting at the same time created it first. */
  created: boolean;
}

/**
 * Turning auth on over existing data (docs/security.md, "Switching from no auth to token
 * auth"): every repository whose project has no row — everything pushed while auth.mode was
 * none, or by an admin with autocreate off — is assigned to a new private project owned by
 * the system admin (`auth.admin.username`), so no user can claim it by creating the project.
 * Each project is created with insert-if-absent semantics, its `project.created` event and a
 * `project.adopt` audit entry (actor `system`) in one transaction: running it again, or on
 * several replicas starting at once, creates nothing twice. Logs what it assigned.
 */
export async function adoptOrphanRepositories(
  store: Pick<ProjectRows, 'orphanRepositories' | 'createProject'> & Pick<UserRows, 'getUser'>,
  adminName: string,
  logger: Logger,
): Promise<Adoption[]> {
  const found = new Map<string, { count: number; names: string[] }>();
  let after: string | undefined;
  for (;;) {
    const names = await store.orphanRepositories(after, PAGE);
    for (const name of names) {
      const project = name.split('/', 1)[0]!;
      const entry = found.get(project) ?? { count: 0, names: [] };
      entry.count++;
      if (entry.names.length < SHOWN) entry.names.push(name);
      found.set(project, entry);
    }
    if (names.length < PAGE) break;
    after = names.at(-1);
  }
  if (found.size === 0) return [];

  const admin = await store.getUser(adminName);
  const owner = admin?.admin ? adminName : null;
  const adopted: Adoption[] = [];
  for (const [project, { count, names }] of found) {
    const created = await store.createProject({ name: project, public: false, createdBy: 'system' }, owner ?? undefined, {
      name: 'system',
      ip: null,
      audit: {
        action: 'project.adopt',
        detail: { owner, repositories: count, reason: 'repositories without a project at start with auth.mode token' },
      },
    });
    if (created) {
      logger.warn(
        { project, owner, repositories: count, examples: names },
        `auth: ${count} repositor${count === 1 ? 'y' : 'ies'} without a project assigned to new private project ${project} (project-admin: ${owner ?? 'none; system admins only'})`,
      );
    } else {
      logger.info(
        { project },
        `auth: project ${project} for repositories without a project was created meanwhile (another replica starting)`,
      );
    }
    adopted.push({ project, repositories: count, owner, created });
  }
  return adopted;
}

import type { AuthConfig } from '../config/auth.js';
import { deny, type Policy } from '../core/policies.js';
import type { MetadataTx } from '../core/ports.js';
import { ROBOT_PREFIX, SPIFFE_SCHEME } from './identity.js';
import { ROLE_PERMISSIONS, projectOf } from './permissions.js';
import type { ProjectRows, ProjectTxRows } from './ports.js';
import { robotPermissions } from './rules.js';

const POLICY = 'projects';

/**
 * Projects on the registry's write hooks (blob commit, mount, manifest PUT), inside the
 * transaction of each write:
 *
 * - **Creation at the first successful write.** A token request or a refused push creates
 *   nothing; the project a user's push needs is inserted (with its `project.created` event
 *   and its `project.autocreate` audit entry, client IP included) in the transaction of the
 *   first write into it, so it exists exactly when that write committed. Only where the
 *   permission table allows it: `auth.projects.autocreate`, a user who may create projects,
 *   and a namespace holding no repository — repositories without a project are never handed
 *   to whoever pushes there first (an admin claims them, see docs/security.md).
 * - **Push re-checked at the write.** Tokens carry `push` for their lifetime; here the
 *   writer's current role (or robot grant) decides. So a member removed a minute ago, or a
 *   user whose token was issued for a project someone else created meanwhile, is refused.
 *
 * Registered when Berth itself knows the identities (auth.mode basic, or token with Berth
 * issuing the tokens); the actor is the request's principal (user or robot name).
 */
export function projectPolicy(config: AuthConfig, store: Pick<ProjectRows, 'within'>): Policy {
  const guard = new WriteGuard(config, store);
  return {
    name: POLICY,
    hooks: {
      'blob.commit': (c, tx) => (c.phase === 'commit' && tx ? guard.write(tx, c.repository, c.actor, c.ip ?? null) : undefined),
      'blob.mount': (c, tx) => (tx ? guard.write(tx, c.repository, c.actor, c.ip ?? null) : undefined),
      'manifest.put': (c, tx) => (tx ? guard.write(tx, c.repository, c.actor, c.ip ?? null) : undefined),
    },
  };
}

class WriteGuard {
  constructor(
    private readonly config: AuthConfig,
    private readonly store: Pick<ProjectRows, 'within'>,
  ) {}

  async write(tx: MetadataTx, repository: string, actor: string | null, ip: string | null): Promise<void> {
    // A change with no actor is the system's own (none reaches here from /v2 with auth on).
    if (actor === null) return;
    const rows = this.store.within(tx);
    const project = projectOf(repository);
    if (actor.startsWith(SPIFFE_SCHEME)) {
      // A workload (src/auth/mtls) has no row to re-read here: its push was judged with the
      // roles its bindings gave when the request was authorized (each request with a client
      // certificate; within a token's lifetime with a token). It never creates a project.
      if (!(await rows.getProject(project))) throw deny(POLICY, 'DENIED', `${actor} may not create project ${project}`, { project });
      return;
    }
    // One query in the common case: the project exists and the writer's role in it allows pushing.
    const existing = actor.startsWith(ROBOT_PREFIX) ? await rows.getProject(project) : await rows.getProjectAndRole(project, actor);
    if (existing) {
      if ('role' in existing && existing.role && ROLE_PERMISSIONS[existing.role].includes('push')) return;
      return this.requirePush(rows, actor, project, repository);
    }

    const user = actor.startsWith(ROBOT_PREFIX) ? null : await rows.getUser(actor);
    const { autocreate, creation } = this.config.projects;
    if (user?.admin) {
      // An admin may push anywhere; with autocreate the project is theirs, as before (even over orphans).
      if (autocreate) await this.create(rows, project, actor, ip);
      return;
    }
    if (!user || !autocreate || creation !== 'everyone') {
      throw deny(POLICY, 'DENIED', `${actor} may not create project ${project}`, { project });
    }
    if (await rows.projectHasRepositories(project)) {
      throw deny(POLICY, 'DENIED', `project ${project} holds repositories that belong to no project; only an administrator may create it`, {
        project,
      });
    }
    // False: someone else's push created it a moment ago; this writer needs push in it like anyone.
    if (!(await this.create(rows, project, actor, ip))) await this.requirePush(rows, actor, project, repository);
  }

  private create(rows: ProjectTxRows, project: string, owner: string, ip: string | null): Promise<boolean> {
    return rows.createProject({ name: project, public: false, createdBy: owner }, owner, {
      name: owner,
      ip,
      audit: { action: 'project.autocreate', detail: { owner } },
    });
  }

  /** The writer's current permission (not the token's): a role with push, a robot grant, or admin. */
  private async requirePush(rows: ProjectTxRows, actor: string, project: string, repository: string): Promise<void> {
    if (actor.startsWith(ROBOT_PREFIX)) {
      const robot = await rows.getRobot(actor);
      const live = robot !== null && (robot.expiresAt === null || robot.expiresAt.getTime() > Date.now());
      if (
        live &&
        robotPermissions(
          { kind: 'robot', name: robot.name, project: robot.project, permissions: robot.permissions },
          project,
          repository,
        ).includes('push')
      )
        return;
    } else {
      const role = await rows.getRole(project, actor);
      if (role && ROLE_PERMISSIONS[role].includes('push')) return;
      if ((await rows.getUser(actor))?.admin) return;
    }
    throw deny(POLICY, 'DENIED', `${actor} may not push to repository ${repository}`, { project });
  }
}

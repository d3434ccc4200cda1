import type { AuthConfig } from '../config/auth.js';
import { isSystemAdmin, type Identity } from './identity.js';
import { PERMISSIONS, PUBLIC_PERMISSIONS, ROLE_PERMISSIONS, projectOf, robotGrant, type Permission } from './permissions.js';
import type { ProjectRecord, ProjectRows } from './ports.js';

/**
 * Answers "what may this identity do here?" from the permission table, the project's
 * visibility and the identity's role or robot grants. Every decision goes through here.
 */
export class AccessRules {
  constructor(
    private readonly store: ProjectRows,
    private readonly config: AuthConfig,
  ) {}

  /**
   * Permissions of `identity` on `repository`. With `forPush`, a missing project is created
   * first when the configuration lets this identity create it (it becomes project-admin).
   */
  async permissions(identity: Identity, repository: string, options: { forPush?: boolean } = {}): Promise<Set<Permission>> {
    const projectName = projectOf(repository);
    let project = await this.store.getProject(projectName);
    if (!project && options.forPush && (await this.autocreate(identity, projectName))) {
      project = await this.store.getProject(projectName);
    }
    if (isSystemAdmin(identity)) return new Set(PERMISSIONS);
    if (!project) return new Set();
    return this.projectPermissions(identity, project, repository);
  }

  /** Permissions on the project itself (read, manage) — for the admin API. */
  async projectPermissions(identity: Identity, project: ProjectRecord, repository?: string): Promise<Set<Permission>> {
    if (isSystemAdmin(identity)) return new Set(PERMISSIONS);
    const granted = new Set<Permission>(project.public ? PUBLIC_PERMISSIONS : []);
    if (identity.kind === 'user') {
      const role = await this.store.getRole(project.name, identity.name);
      for (const p of role ? ROLE_PERMISSIONS[role] : []) granted.add(p);
    } else if (identity.kind === 'robot' && repository !== undefined) {
      for (const p of robotPermissions(identity, project.name, repository)) granted.add(p);
    }
    return granted;
  }

  /** Whether `identity` may create projects (explicitly, or by pushing). */
  mayCreateProjects(identity: Identity): boolean {
    if (isSystemAdmin(identity)) return true;
    return identity.kind === 'user' && this.config.projects.creation === 'everyone';
  }

  private async autocreate(identity: Identity, projectName: string): Promise<boolean> {
    if (!this.config.projects.autocreate || !this.mayCreateProjects(identity) || identity.kind !== 'user') return false;
    // Audited (and its project.created event appended) in the same transaction as the project.
    await this.store.createProject({ name: projectName, public: false, createdBy: identity.name }, identity.name, {
      name: identity.name,
      ip: null,
      audit: { action: 'project.autocreate', detail: { owner: identity.name } },
    });
    return true;
  }
}

function robotPermissions(robot: Extract<Identity, { kind: 'robot' }>, project: string, repository: string): Permission[] {
  const out: Permission[] = [];
  for (const grant of robot.permissions) {
    if (grant.project !== project || !globMatch(grant.repository, repository)) continue;
    for (const action of grant.actions) {
      out.push(...robotGrant(action));
    }
  }
  return out;
}

/** `*` matches any run of characters (including '/'); everything else is literal. */
export function globMatch(pattern: string, value: string): boolean {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`).test(value);
}

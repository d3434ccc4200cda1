import type { AuthConfig } from '../config/auth.js';
import { isSystemAdmin, type Identity } from './identity.js';
import { PERMISSIONS, PUBLIC_PERMISSIONS, ROLE_PERMISSIONS, projectOf, robotGrant, type Permission } from './permissions.js';
import type { ProjectRecord, ProjectRows } from './ports.js';

/** What a user may do in a namespace their first push will turn into their project: push into it (and read what they push). */
const CREATOR_PERMISSIONS: readonly Permission[] = ['pull', 'push'];

/**
 * Answers "what may this identity do here?" from the permission table, the project's
 * visibility and the identity's role or robot grants. Every decision goes through here.
 * Nothing is created here: a project comes into being only explicitly (admin API, CLI) or at
 * the first successful write into it (project-policy.ts, in that write's transaction).
 */
export class AccessRules {
  constructor(
    private readonly store: ProjectRows,
    private readonly config: AuthConfig,
  ) {}

  /**
   * Permissions of `identity` on `repository`. With `forPush`, a project that does not exist
   * yields pull and push to a user whose first push would create it (see `wouldCreate`); no
   * other identity gets anything in a project that does not exist, except system admins.
   */
  async permissions(identity: Identity, repository: string, options: { forPush?: boolean } = {}): Promise<Set<Permission>> {
    if (isSystemAdmin(identity)) return new Set(PERMISSIONS);
    const projectName = projectOf(repository);
    const project = await this.store.getProject(projectName);
    if (project) return this.projectPermissions(identity, project, repository);
    if (options.forPush && (await this.wouldCreate(identity, projectName))) return new Set(CREATOR_PERMISSIONS);
    return new Set();
  }

  /**
   * Whether `identity` may pull, for many repositories in a row (catalog listing): each
   * project's row and the identity's role in it are read once per checker.
   */
  readChecker(identity: Identity): (repository: string) => Promise<boolean> {
    if (isSystemAdmin(identity)) return async () => true;
    const projects = new Map<string, Promise<ProjectRecord | null>>();
    const held = new Map<string, Promise<Set<Permission>>>();
    return async (repository) => {
      const name = projectOf(repository);
      if (!projects.has(name)) projects.set(name, this.store.getProject(name));
      const project = await projects.get(name)!;
      if (!project) return false;
      // A robot's grants name repository patterns; everyone else's permissions are per project.
      if (identity.kind === 'robot') return (await this.projectPermissions(identity, project, repository)).has('pull');
      if (!held.has(name)) held.set(name, this.projectPermissions(identity, project));
      return (await held.get(name)!).has('pull');
    };
  }

  /** The project's row, or null. */
  project(name: string): Promise<ProjectRecord | null> {
    return this.store.getProject(name);
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
    } else if (identity.kind === 'workload') {
      const role = identity.roles[project.name];
      for (const p of role ? ROLE_PERMISSIONS[role] : []) granted.add(p);
    }
    return granted;
  }

  /** Whether `identity` may create projects (explicitly, or by pushing). */
  mayCreateProjects(identity: Identity): boolean {
    if (isSystemAdmin(identity)) return true;
    return identity.kind === 'user' && this.config.projects.creation === 'everyone';
  }

  /**
   * Whether a push by `identity` would create the missing project `projectName`: autocreate
   * is on, the permission table lets this user create projects, and no repository lives in
   * that namespace yet. Repositories without a project (pushed with auth.mode none, or by an
   * admin with autocreate off) are never handed to whoever pushes there first.
   */
  async wouldCreate(identity: Identity, projectName: string): Promise<boolean> {
    if (!this.config.projects.autocreate || identity.kind !== 'user' || !this.mayCreateProjects(identity)) return false;
    return !(await this.store.projectHasRepositories(projectName));
  }
}

export function robotPermissions(robot: Extract<Identity, { kind: 'robot' }>, project: string, repository: string): Permission[] {
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

import { RegistryError } from '../core/errors.js';
import { identityName, isSystemAdmin, type Identity } from './identity.js';
import type { Permission } from './permissions.js';
import type { AuditQuery, AuditRecord, MemberRecord, ProjectRecord, RobotRecord, UserRecord } from './ports.js';
import type { AuthStore } from './ports.js';
import type { AccessRules } from './rules.js';

/**
 * The read side of accounts, as the admin API and the CLI see it: lookups that answer
 * NOT_FOUND / DENIED from the permission table, so callers never reach into the store.
 * (Changes are in accounts.ts.)
 */
export class Directory {
  constructor(
    private readonly store: AuthStore,
    private readonly rules: AccessRules,
  ) {}

  /** The caller: name, kind, admin flag and project memberships. */
  async me(identity: Identity): Promise<{ name: string; kind: Identity['kind']; admin: boolean; memberships: MemberRecord[] }> {
    return {
      name: identityName(identity),
      kind: identity.kind,
      admin: isSystemAdmin(identity),
      memberships: identity.kind === 'user' ? await this.store.listMemberships(identity.name) : [],
    };
  }

  listUsers(): Promise<UserRecord[]> {
    return this.store.listUsers();
  }

  async user(username: string): Promise<UserRecord> {
    const user = await this.store.getUser(username);
    if (!user) throw new RegistryError('NOT_FOUND', `user ${username} not found`);
    return user;
  }

  memberships(username: string): Promise<MemberRecord[]> {
    return this.store.listMemberships(username);
  }

  /** Admins manage everyone; a user may read and change only their own account. */
  requireSelfOrAdmin(identity: Identity, username: string): void {
    const self = identity.kind === 'user' && identity.name === username;
    if (!self && !isSystemAdmin(identity)) throw new RegistryError('DENIED', 'only an administrator may manage other users');
  }

  /** Projects `identity` may see (all, for an admin). */
  async projects(identity: Identity): Promise<ProjectRecord[]> {
    const visible: ProjectRecord[] = [];
    for (const project of await this.store.listProjects()) {
      if ((await this.rules.projectPermissions(identity, project)).has('read-project')) visible.push(project);
    }
    return visible;
  }

  /**
   * Loads `name` and checks `identity` holds `permission` in it. A project the caller may not
   * even read answers NOT_FOUND, so private project names do not leak.
   */
  async project(identity: Identity, name: string, permission: Permission): Promise<ProjectRecord> {
    const project = await this.store.getProject(name);
    const held = project ? await this.rules.projectPermissions(identity, project) : new Set<Permission>();
    if (!project || !held.has('read-project')) throw new RegistryError('NOT_FOUND', `project ${name} not found`);
    if (!held.has(permission))
      throw new RegistryError('DENIED', `this needs the ${permission} permission in project ${project.name} (project-admin)`);
    return project;
  }

  mayCreateProjects(identity: Identity): boolean {
    return this.rules.mayCreateProjects(identity);
  }

  members(project: string): Promise<MemberRecord[]> {
    return this.store.listMembers(project);
  }

  /** Robots of `project`, or the system robots (null). */
  robots(project: string | null): Promise<RobotRecord[]> {
    return this.store.listRobots(project);
  }

  /** The robot `name` of `project` (null: a system robot); NOT_FOUND otherwise. */
  async robot(name: string, project: string | null): Promise<RobotRecord> {
    const robot = await this.store.getRobot(name);
    if (!robot || robot.project !== project) throw new RegistryError('NOT_FOUND', `robot ${name} not found`);
    return robot;
  }

  /** Audit entries matching `query` (the caller decides who may ask: the admin API's permission table). */
  audit(query: AuditQuery): Promise<AuditRecord[]> {
    return this.store.queryAudit(query);
  }
}

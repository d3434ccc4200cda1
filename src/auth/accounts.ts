import { RegistryError } from '../core/errors.js';
import { validateRepositoryName } from '../core/names.js';
import { ROBOT_PREFIX } from './identity.js';
import { ROBOT_PERMISSIONS, isRole, type Role } from './permissions.js';
import type { AuthStore, ChangeActor, ProjectRecord, RobotPermission, RobotRecord, UserRecord } from './ports.js';
import { generateSecret, hashSecret, validatePassword, validateUsername } from './secrets.js';
import { sourceOfAccount } from './sources.js';

/** Who performs a change and from where: recorded in the audit log and as the event's actor. */
export type Actor = Pick<ChangeActor, 'name' | 'ip'>;

export interface NewRobot {
  /** Short name; the login becomes robot$<project>+<name> (or robot$<name> for a system robot). */
  name: string;
  project: string | null;
  permissions: RobotPermission[];
  description?: string | null;
  expiresAt?: Date | null;
}

const notFound = (what: string) => new RegistryError('NOT_FOUND', `${what} not found`);
const conflict = (what: string) => new RegistryError('CONFLICT', `${what} already exists`);
const badRequest = (message: string) => new RegistryError('INVALID_ARGUMENT', message);

/**
 * Account, project, membership and robot management. Every change is audited and becomes a
 * domain event: the store writes both in the change's own transaction (ChangeActor). Callers
 * (admin API, CLI) decide who may call what; these methods validate the change itself.
 */
export class Accounts {
  constructor(
    private readonly store: AuthStore,
    /** Whether any repository lives in the project (a project with repositories cannot be deleted). */
    private readonly projectHasRepositories: (project: string) => Promise<boolean>,
  ) {}

  async addUser(actor: Actor, username: string, password: string, admin = false): Promise<UserRecord> {
    validateUsername(username);
    const passwordHash = await hashSecret(validatePassword(password));
    if (!(await this.store.createUser({ username, passwordHash, admin }, actor))) throw conflict(`user ${username}`);
    return (await this.store.getUser(username))!;
  }

  async setPassword(actor: Actor, username: string, password: string): Promise<void> {
    const source = sourceOfAccount((await this.store.getUser(username))?.passwordHash ?? '');
    // A local password would turn the directory's user into a local one (and outlive their removal there).
    if (source !== null)
      throw new RegistryError('CONFLICT', `user ${username} comes from the identity source ${source}: its password is managed there`);
    const passwordHash = await hashSecret(validatePassword(password));
    if (!(await this.store.setPassword(username, passwordHash, actor))) throw notFound(`user ${username}`);
  }

  async setAdmin(actor: Actor, username: string, admin: boolean): Promise<void> {
    if (!(await this.store.setAdmin(username, admin, actor))) throw notFound(`user ${username}`);
  }

  async removeUser(actor: Actor, username: string): Promise<void> {
    if (!(await this.store.deleteUser(username, actor))) throw notFound(`user ${username}`);
  }

  /**
   * Creates a project. Over repositories that already exist under its name (pushed with
   * auth.mode none, or by an admin with autocreate off) only with `overExisting`: the admin
   * API passes false unless the caller is a system admin, since otherwise whoever names a
   * project first would own content they never had access to; the CLI (the operator, who
   * holds the database) keeps the default.
   */
  async createProject(
    actor: Actor,
    name: string,
    isPublic: boolean,
    owner?: string,
    options: { overExisting: boolean } = { overExisting: true },
  ): Promise<ProjectRecord> {
    validateProjectName(name);
    if (!options.overExisting && !(await this.store.getProject(name)) && (await this.projectHasRepositories(name))) {
      // The name is taken, as by an existing project (409); the message tells an admin what to do.
      throw new RegistryError(
        'CONFLICT',
        `project name ${name} is taken: repositories exist under it without a project, and only a system administrator may create it`,
      );
    }
    if (!(await this.store.createProject({ name, public: isPublic, createdBy: actor.name }, owner, actor)))
      throw conflict(`project ${name}`);
    return (await this.store.getProject(name))!;
  }

  async setVisibility(actor: Actor, name: string, isPublic: boolean): Promise<void> {
    if (!(await this.store.setProjectVisibility(name, isPublic, actor))) throw notFound(`project ${name}`);
  }

  async deleteProject(actor: Actor, name: string): Promise<void> {
    // Otherwise anyone could re-create the name (autocreate) and inherit the old repositories.
    if (await this.projectHasRepositories(name))
      throw new RegistryError('CONFLICT', `project ${name} still has repositories; delete them first`);
    if (!(await this.store.deleteProject(name, actor))) throw notFound(`project ${name}`);
  }

  async setMember(actor: Actor, project: string, username: string, role: unknown): Promise<void> {
    if (!isRole(role)) throw badRequest(`role must be one of project-admin, maintainer, developer, guest, limited-guest`);
    if (!(await this.store.getProject(project))) throw notFound(`project ${project}`);
    if (!(await this.store.getUser(username))) throw notFound(`user ${username}`);
    await this.store.setMember(project, username, role as Role, actor);
  }

  async removeMember(actor: Actor, project: string, username: string): Promise<void> {
    if (!(await this.store.removeMember(project, username, actor))) throw notFound(`member ${username} of project ${project}`);
  }

  /** Creates a robot account; the returned secret is shown once and stored only as a bcrypt hash. */
  async createRobot(actor: Actor, robot: NewRobot): Promise<{ robot: RobotRecord; secret: string }> {
    validateUsername(robot.name);
    if (robot.project !== null && !(await this.store.getProject(robot.project))) throw notFound(`project ${robot.project}`);
    const permissions = validateRobotPermissions(robot.permissions, robot.project);
    const name = `${ROBOT_PREFIX}${robot.project !== null ? `${robot.project}+` : ''}${robot.name}`;
    const secret = generateSecret();
    const created = await this.store.createRobot(
      {
        name,
        project: robot.project,
        secretHash: await hashSecret(secret),
        permissions,
        description: robot.description ?? null,
        expiresAt: robot.expiresAt ?? null,
        createdBy: actor.name,
      },
      actor,
    );
    if (!created) throw conflict(`robot ${name}`);
    return { robot: (await this.store.getRobot(name))!, secret };
  }

  async deleteRobot(actor: Actor, name: string): Promise<void> {
    if (!(await this.store.deleteRobot(name, actor))) throw notFound(`robot ${name}`);
  }
}

export function validateProjectName(name: unknown): string {
  if (typeof name !== 'string' || name.includes('/')) throw badRequest('project name must be a single repository path component');
  try {
    validateRepositoryName(name);
  } catch {
    throw badRequest('project name must be lowercase [a-z0-9] separated by ".", "_", "__" or "-"');
  }
  return name;
}

function validateRobotPermissions(value: unknown, project: string | null): RobotPermission[] {
  if (!Array.isArray(value) || value.length === 0) throw badRequest('a robot needs at least one permission');
  return value.map((entry: unknown) => {
    const p = entry as Partial<RobotPermission> | null;
    if (!p || typeof p.project !== 'string' || !Array.isArray(p.actions))
      throw badRequest('permission must be {project, repository, actions}');
    if (project !== null && p.project !== project)
      throw badRequest(`a robot of project ${project} may only be granted access to ${project}`);
    const bad = p.actions.filter((a) => !(ROBOT_PERMISSIONS as readonly unknown[]).includes(a));
    if (bad.length > 0) throw badRequest(`robot actions must be among ${ROBOT_PERMISSIONS.join(', ')}`);
    return {
      project: validateProjectName(p.project),
      repository: typeof p.repository === 'string' ? p.repository : '*',
      actions: p.actions as string[],
    };
  });
}

import type { AuditOutcome } from '../core/events.js';
import type { MetadataTx } from '../core/ports.js';
import type { Role } from './permissions.js';

/** Adapters merge membership and binding roles with it (they import nothing of auth but this file). */
export { strongestRole } from './permissions.js';

/**
 * The auth layer's narrow port onto the metadata database: accounts, projects and their
 * members, robot accounts, signing keys, refresh tokens and the audit log. Implemented on
 * Kysely for SQLite, PostgreSQL and MySQL in src/metadata/auth-store.ts. Times are Dates.
 */

export interface UserRecord {
  username: string;
  passwordHash: string;
  admin: boolean;
  createdAt: Date;
}

export interface ProjectRecord {
  name: string;
  public: boolean;
  createdBy: string | null;
  createdAt: Date;
}

export interface MemberRecord {
  project: string;
  username: string;
  role: Role;
  /**
   * Set when the role comes from identity bindings of that source (an external user's
   * identity_grants as of their last login, src/auth/bindings.ts), not from a membership row.
   * A user holding both is listed once, with the stronger role.
   */
  source?: string;
}

/** A robot's grant: `actions` on repositories of `project` matching `repository` ('*' = all). */
export interface RobotPermission {
  project: string;
  repository: string;
  actions: string[];
}

export interface RobotRecord {
  /** Full login name, e.g. robot$team-a+ci */
  name: string;
  /** Owning project, or null for a system-level robot (created by an admin). */
  project: string | null;
  secretHash: string;
  permissions: RobotPermission[];
  description: string | null;
  expiresAt: Date | null;
  createdBy: string;
  createdAt: Date;
}

export interface SigningKeyRecord {
  kid: string;
  privateJwk: string;
  publicJwk: string;
  createdAt: Date;
  /** Set when a newer key replaced this one; it stays valid for verification a while longer. */
  retiredAt: Date | null;
}

export interface RefreshTokenRecord {
  /** sha256 of the opaque secret (the secret itself is never stored). */
  hash: string;
  username: string;
  clientId: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface AuditEntry {
  actor: string;
  action: string;
  target: string;
  ip: string | null;
  detail?: unknown;
  /** The project the entry belongs to (its project admins may read it); null or absent: system-wide. */
  project?: string | null;
  /** Absent: success. */
  outcome?: AuditOutcome;
}

/**
 * Who makes a change and from where. Given to a mutating AuthStore method, it is the actor of
 * the change's domain event and of its audit entry, both written in the change's own
 * transaction (so the change, its event and its audit row commit together or not at all).
 * Without it the change still appends its event (actor null) but writes no audit entry.
 */
export interface ChangeActor {
  name: string;
  ip: string | null;
  /** The audit entry's action and detail where they differ from the method's own (e.g. project.autocreate, source: htpasswd). */
  audit?: { action?: string; detail?: unknown };
}

export interface AuditRecord extends AuditEntry {
  id: number;
  at: Date;
  project: string | null;
  outcome: AuditOutcome;
}

/** Filters of the audit log (each optional; all given must hold), newest first. */
export interface AuditQuery {
  limit: number;
  /** Only entries with a smaller id (the next page after the last id seen). */
  beforeId?: number;
  actor?: string;
  action?: string;
  project?: string;
  /** The target itself, or anything under it: `team/app` matches `team/app:1.0`, `team/app@sha256:…`, `team/app/sub`. */
  resource?: string;
  /** At or after (epoch ms). */
  from?: number;
  /** Before (epoch ms). */
  to?: number;
  outcome?: AuditOutcome;
}

/**
 * Mutating methods (users, projects, members, robots) append their domain event
 * (src/core/events.ts) to the outbox in the same transaction as their rows, and — when given
 * an `actor` — their audit entry too. A refused change (taken name, nothing to update)
 * writes neither.
 */
/** Accounts. */
export interface UserRows {
  countUsers(): Promise<number>;
  getUser(username: string): Promise<UserRecord | null>;
  listUsers(): Promise<UserRecord[]>;
  /** Returns false when the name is taken. */
  createUser(user: Omit<UserRecord, 'createdAt'>, actor?: ChangeActor): Promise<boolean>;
  /** Changes the hash and revokes the user's refresh tokens, atomically. */
  setPassword(username: string, passwordHash: string, actor?: ChangeActor): Promise<boolean>;
  setAdmin(username: string, admin: boolean, actor?: ChangeActor): Promise<boolean>;
  /** Removes the user with their memberships and refresh tokens. */
  deleteUser(username: string, actor?: ChangeActor): Promise<boolean>;
}

/** Projects and their members. */
export interface ProjectRows {
  getProject(name: string): Promise<ProjectRecord | null>;
  listProjects(): Promise<ProjectRecord[]>;
  /** Creates the project and (when given) makes `owner` its project-admin, in one transaction. False if it exists. */
  createProject(project: Omit<ProjectRecord, 'createdAt'>, owner?: string, actor?: ChangeActor): Promise<boolean>;
  setProjectVisibility(name: string, isPublic: boolean, actor?: ChangeActor): Promise<boolean>;
  /** Removes the project, its members and its robots. Repositories are left to the registry. */
  deleteProject(name: string, actor?: ChangeActor): Promise<boolean>;

  getRole(project: string, username: string): Promise<Role | null>;
  listMembers(project: string): Promise<MemberRecord[]>;
  /** Projects `username` belongs to (any role). */
  listMemberships(username: string): Promise<MemberRecord[]>;
  setMember(project: string, username: string, role: Role, actor?: ChangeActor): Promise<void>;
  removeMember(project: string, username: string, actor?: ChangeActor): Promise<boolean>;

  /** Whether a repository `project` or `project/…` exists (the registry's rows: a project over them would take them over). */
  projectHasRepositories(project: string): Promise<boolean>;
  /** Repositories whose project has no row (orphans), by name, strictly after `after`. */
  orphanRepositories(after: string | undefined, limit: number): Promise<string[]>;
  /** The rows first-write project creation reads and writes, inside a registry write transaction. */
  within(tx: MetadataTx): ProjectTxRows;
}

/**
 * Projects as seen from inside a registry write (src/auth/project-policy.ts): the project a
 * first push creates is inserted, with its event and audit entry, in the transaction of that
 * write, so it exists exactly when the write committed.
 */
export interface ProjectTxRows {
  getProject(name: string): Promise<ProjectRecord | null>;
  /** The project and `username`'s role in it, in one query (the common case of every write); null if no such project. */
  getProjectAndRole(name: string, username: string): Promise<{ project: ProjectRecord; role: Role | null } | null>;
  getRole(project: string, username: string): Promise<Role | null>;
  getUser(username: string): Promise<UserRecord | null>;
  getRobot(name: string): Promise<RobotRecord | null>;
  projectHasRepositories(project: string): Promise<boolean>;
  /** As ProjectRows.createProject, in this transaction. False if it exists. */
  createProject(project: Omit<ProjectRecord, 'createdAt'>, owner: string | undefined, actor: ChangeActor): Promise<boolean>;
}

/** Robot accounts (credentials of machines). */
export interface RobotRows {
  getRobot(name: string): Promise<RobotRecord | null>;
  listRobots(project: string | null): Promise<RobotRecord[]>;
  createRobot(robot: Omit<RobotRecord, 'createdAt'>, actor?: ChangeActor): Promise<boolean>;
  deleteRobot(name: string, actor?: ChangeActor): Promise<boolean>;
}

/** The token signing keys. */
export interface SigningKeyRows {
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  /** Adds `key` as the active key and retires the previous active one, atomically. */
  addSigningKey(key: Omit<SigningKeyRecord, 'retiredAt'>): Promise<void>;
}

/** Refresh tokens (stored as hashes). */
export interface RefreshTokenRows {
  saveRefreshToken(token: RefreshTokenRecord): Promise<void>;
  getRefreshToken(hash: string): Promise<RefreshTokenRecord | null>;
  revokeRefreshToken(hash: string): Promise<boolean>;
}

/** The audit log. */
export interface AuditRows {
  audit(entry: AuditEntry): Promise<void>;
  listAudit(limit: number, beforeId?: number): Promise<AuditRecord[]>;
  /** The entries matching `query`, newest first (indexed on every filter: migrations/0009-audit.ts). */
  queryAudit(query: AuditQuery): Promise<AuditRecord[]>;
  /** Writes `entries` inside `tx` (an outbox consumer's: they commit with its cursor, exactly once), each at its own time. */
  auditWithin(tx: MetadataTx, entries: DatedAuditEntry[]): Promise<void>;
}

/** How a binding's subject is matched: a group the source reports, the identity itself, or a path prefix of it (SPIFFE IDs). */
export type BindingKind = 'group' | 'id' | 'prefix';

/**
 * An identity binding (src/auth/bindings.ts): what an external identity of `source` ('ldap',
 * 'oidc:<provider>', 'spiffe') matching `kind` + `subject` may do in `project`.
 */
export interface IdentityBindingRecord {
  id: number;
  source: string;
  kind: BindingKind;
  subject: string;
  project: string;
  role: Role;
  createdBy: string;
  createdAt: Date;
}

/** A project role an identity holds (through bindings). */
export interface ProjectGrant {
  project: string;
  role: Role;
}

/**
 * Identity bindings and the roles external users hold through them. A binding change appends
 * its `binding.created` / `binding.deleted` event (and, with an actor, its audit entry) in its
 * own transaction, like the account changes.
 */
export interface IdentityBindingRows {
  /** Bindings, oldest first; optionally only those of one source or project. */
  listBindings(filter?: { source?: string; project?: string }): Promise<IdentityBindingRecord[]>;
  getBinding(id: number): Promise<IdentityBindingRecord | null>;
  /** Null when the same (source, kind, subject, project) is already bound. */
  createBinding(binding: Omit<IdentityBindingRecord, 'id' | 'createdAt'>, actor?: ChangeActor): Promise<IdentityBindingRecord | null>;
  /**
   * Removes the binding and, in the same transaction, the grants users of its source hold in
   * its project: access ends at once, and their next login derives what other bindings give.
   */
  deleteBinding(id: number, actor?: ChangeActor): Promise<boolean>;
  /** The bindings of `source` that may match: kind group with a subject among `groups`, kind id equal to `id`, and every kind prefix. */
  candidateBindings(source: string, groups: string[], id: string | undefined): Promise<IdentityBindingRecord[]>;
  /** Replaces, atomically, the project roles `username` holds through bindings of `source`. */
  setGrants(username: string, source: string, grants: ProjectGrant[]): Promise<void>;
}

/** An audit entry of something that happened earlier (an event's time). */
export interface DatedAuditEntry extends AuditEntry {
  at: Date;
}

/**
 * The auth layer's port, by aggregate: each consumer asks for the narrowest part it uses
 * (KeyRing: SigningKeyRows; AccessRules: ProjectRows …). One adapter implements all of them.
 */
export type AuthStore = UserRows & ProjectRows & RobotRows & SigningKeyRows & RefreshTokenRows & AuditRows & IdentityBindingRows;

/**
 * A browser session of the web UI (src/auth/sessions.ts): the id itself is never stored, only
 * its sha256. `expiresAt` is the absolute end; the idle expiry is counted from `lastSeenAt`.
 */
export interface SessionRecord {
  idHash: string;
  username: string;
  csrfToken: string;
  createdAt: Date;
  expiresAt: Date;
  lastSeenAt: Date;
}

/** Browser sessions in the metadata database (src/metadata/session-store.ts), so every replica sees them. */
export interface SessionRows {
  createSession(session: SessionRecord): Promise<void>;
  getSession(idHash: string): Promise<SessionRecord | null>;
  /** Moves the session's last use forward (the idle expiry). */
  touchSession(idHash: string, at: Date): Promise<void>;
  deleteSession(idHash: string): Promise<boolean>;
  /** Deletes sessions past their absolute end or idle since before `idleBefore`; returns how many. */
  deleteExpiredSessions(now: Date, idleBefore: Date): Promise<number>;
}

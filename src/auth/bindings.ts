import { RegistryError } from '../core/errors.js';
import type { Actor } from './accounts.js';
import { ROLES, isRole, strongestRole, type Role } from './permissions.js';
import type { BindingKind, IdentityBindingRecord, IdentityBindingRows, ProjectGrant, ProjectRows } from './ports.js';

/**
 * Identity bindings: an external subject of an identity source → a project role. The one way
 * identities Berth does not own (LDAP/AD users, OIDC users, SPIFFE workloads) get project
 * roles. A binding names its `source` (`ldap`, `oidc:<provider>`, `spiffe`), what it matches
 * (`kind`): a `group` the source reports for the user, the identity itself (`id`: a user name
 * or a SPIFFE ID), or a `prefix` of the identity on path boundaries (SPIFFE IDs:
 * `spiffe://example.org/ns/ci` matches `spiffe://example.org/ns/ci/sa/builder`, not
 * `…/ns/cid`), and the `role` it gives in `project`. Several matching bindings give the
 * strongest of their roles. Managed by system admins (admin API, `berth binding`); every
 * change is audited and becomes a domain event in its own transaction.
 */
export const BINDING_KINDS: readonly BindingKind[] = ['group', 'id', 'prefix'];

/** A source name: `ldap`, `spiffe`, or `<kind>:<name>` such as `oidc:keycloak`. */
const SOURCE = /^[a-z][a-z0-9-]{0,31}(?::[a-z0-9][a-z0-9._-]{0,63})?$/;
/** The longest subject the table keys (migrations/0011-identity.ts). */
const MAX_SUBJECT = 384;

export interface NewBinding {
  source: string;
  kind: string;
  subject: string;
  project: string;
  role: string;
}

const badRequest = (message: string) => new RegistryError('INVALID_ARGUMENT', message);

/**
 * Directory group names compare case-insensitively (LDAP DNs and CNs): the LDAP source reports
 * them lowercased, and group bindings of `ldap` are stored lowercased to match.
 */
export function normalizeSubject(source: string, kind: BindingKind, subject: string): string {
  return source === 'ldap' && kind === 'group' ? subject.toLowerCase() : subject;
}

/** Whether `id` is `prefix` or lies below it on a path boundary ('/'). */
export function prefixMatches(prefix: string, id: string): boolean {
  if (prefix === '') return false;
  if (id === prefix) return true;
  return id.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`);
}

export class IdentityBindings {
  constructor(private readonly store: IdentityBindingRows & Pick<ProjectRows, 'getProject'>) {}

  list(filter: { source?: string; project?: string } = {}): Promise<IdentityBindingRecord[]> {
    return this.store.listBindings(filter);
  }

  async get(id: number): Promise<IdentityBindingRecord> {
    const binding = await this.store.getBinding(id);
    if (!binding) throw new RegistryError('NOT_FOUND', `binding ${id} not found`);
    return binding;
  }

  async add(actor: Actor, input: NewBinding): Promise<IdentityBindingRecord> {
    const binding = validateBinding(input);
    if (!(await this.store.getProject(binding.project))) throw new RegistryError('NOT_FOUND', `project ${binding.project} not found`);
    const created = await this.store.createBinding({ ...binding, createdBy: actor.name }, actor);
    if (!created)
      throw new RegistryError(
        'CONFLICT',
        `${binding.source} ${binding.kind} ${binding.subject} is already bound in project ${binding.project}`,
      );
    return created;
  }

  async remove(actor: Actor, id: number): Promise<void> {
    if (!(await this.store.deleteBinding(id, actor))) throw new RegistryError('NOT_FOUND', `binding ${id} not found`);
  }

  /**
   * The project roles an identity of `source` holds through bindings: its `groups` (kind
   * group), its `id` (kind id; prefix bindings match it on path boundaries). One entry per
   * project, with the strongest role, in project order.
   */
  async rolesFor(source: string, groups: string[], id?: string): Promise<ProjectGrant[]> {
    const normalized = [...new Set(groups.map((g) => normalizeSubject(source, 'group', g)))];
    const candidates = await this.store.candidateBindings(source, normalized, id);
    const roles = new Map<string, Role>();
    for (const b of candidates) {
      if (b.kind === 'prefix' && (id === undefined || !prefixMatches(b.subject, id))) continue;
      roles.set(b.project, strongestRole([roles.get(b.project), b.role])!);
    }
    return [...roles].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([project, role]) => ({ project, role }));
  }
}

function validateBinding(input: NewBinding): Omit<IdentityBindingRecord, 'id' | 'createdAt' | 'createdBy'> {
  if (typeof input.source !== 'string' || !SOURCE.test(input.source)) {
    throw badRequest('source must be an identity source name: ldap, spiffe, or oidc:<provider> (lowercase)');
  }
  if (!(BINDING_KINDS as readonly string[]).includes(input.kind)) throw badRequest(`kind must be one of ${BINDING_KINDS.join(', ')}`);
  const kind = input.kind as BindingKind;
  if (typeof input.subject !== 'string' || input.subject.trim() === '' || input.subject !== input.subject.trim()) {
    throw badRequest('subject must be a non-empty string without leading or trailing spaces');
  }
  if (input.subject.length > MAX_SUBJECT) throw badRequest(`subject must be at most ${MAX_SUBJECT} characters`);
  if (kind === 'prefix' && input.subject.endsWith('/'))
    throw badRequest('a prefix subject matches on path boundaries: give it without a trailing "/"');
  if (!isRole(input.role)) throw badRequest(`role must be one of ${ROLES.join(', ')}`);
  if (typeof input.project !== 'string' || input.project === '') throw badRequest('project is required');
  return {
    source: input.source,
    kind,
    subject: normalizeSubject(input.source, kind, input.subject),
    project: input.project,
    role: input.role,
  };
}

import { createContext, useContext } from 'react';
import type { Me, Session, SystemInfo } from './api/types';

export type Role = 'project-admin' | 'maintainer' | 'developer' | 'guest' | 'limited-guest';
const RANK: Record<string, number> = { 'project-admin': 5, maintainer: 4, developer: 3, guest: 2, 'limited-guest': 1 };

export interface SessionContext {
  session: Session;
  info: SystemInfo | null;
  me: Me | null;
  signOut: () => void;
}

export const SessionCtx = createContext<SessionContext | null>(null);

export function useSession(): SessionContext {
  const ctx = useContext(SessionCtx);
  if (!ctx) throw new Error('useSession outside a signed-in view');
  return ctx;
}

/** The caller's role in a project (system admins: project-admin everywhere). */
export function roleIn(ctx: SessionContext, project: string | null | undefined): Role | null {
  if (ctx.session.admin || ctx.me?.admin) return 'project-admin';
  if (!project) return null;
  const fromProjects = ctx.me?.projects?.find((p) => p.name === project)?.role;
  const fromMemberships = ctx.me?.memberships?.find((m) => m.project === project)?.role;
  return (fromProjects ?? fromMemberships ?? null) as Role | null;
}

/** What the UI offers in a project, by role (the API refuses the rest anyway). */
export function can(ctx: SessionContext, project: string | null | undefined, action: 'push' | 'delete' | 'manage'): boolean {
  const rank = RANK[roleIn(ctx, project) ?? ''] ?? 0;
  return action === 'manage' ? rank >= 5 : action === 'delete' ? rank >= 4 : rank >= 3;
}

export function projectOf(repository: string): string {
  const slash = repository.indexOf('/');
  return slash < 0 ? repository : repository.slice(0, slash);
}

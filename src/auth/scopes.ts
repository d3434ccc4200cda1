import type { Scope } from './access.js';

/** One entry of a token's `access` claim (Docker token spec). */
export interface Grant {
  type: string;
  name: string;
  actions: string[];
}

/**
 * Parses `scope` parameters: `repository:team/app:pull,push`, `registry:catalog:*`,
 * `repository(plugin):name:pull`. Several may share one parameter, space-separated (OAuth2).
 * Malformed entries are dropped: a token request never fails because of a scope.
 */
export function parseScopes(values: string[]): Grant[] {
  const out: Grant[] = [];
  for (const value of values) {
    for (const item of value.split(' ')) {
      const first = item.indexOf(':');
      const last = item.lastIndexOf(':');
      if (first <= 0 || last === first) continue;
      const type = item.slice(0, first).replace(/\(.*\)$/, '');
      const name = item.slice(first + 1, last);
      const actions = [
        ...new Set(
          item
            .slice(last + 1)
            .split(',')
            .filter(Boolean),
        ),
      ];
      if (name && actions.length > 0) out.push({ type, name, actions });
    }
  }
  return out;
}

/** The scope string a 401 challenge advertises for what the request needs. */
export function scopeString(scope: Scope): string | null {
  if (scope.type === 'base') return null;
  return `${scope.type}:${scope.name}:${scope.actions.join(',')}`;
}

/** Actions the grants give on (type, name); '*' is kept as is. */
export function grantedActions(grants: Grant[], type: string, name: string): Set<string> {
  const out = new Set<string>();
  for (const g of grants) if (g.type === type && g.name === name) for (const a of g.actions) out.add(a);
  return out;
}

/** Parses a token's `access` claim defensively (it may come from an external issuer). */
export function accessClaim(value: unknown): Grant[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((entry: unknown) => {
    const e = entry as Partial<Grant> | null;
    if (!e || typeof e.type !== 'string' || typeof e.name !== 'string' || !Array.isArray(e.actions)) return [];
    return [{ type: e.type, name: e.name, actions: e.actions.filter((a): a is string => typeof a === 'string') }];
  });
}

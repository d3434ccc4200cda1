// A small history router: the server answers index.html for every UI path, so plain paths work
// on reload. Routes: / (projects), /projects/:p, /projects/:p/settings[/:tab], /repository?name=,
// /artifact?repository=&reference=, /admin[/:tab], /search?q=.
import { useEffect, useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from 'react';

const listeners = new Set<() => void>();
function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener('popstate', listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener('popstate', listener);
  };
}

export function navigate(href: string, replace = false): void {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  for (const listener of listeners) listener();
  window.scrollTo?.(0, 0);
}

const current = () => location.pathname + location.search;

export interface Route {
  path: string;
  parts: string[];
  query: URLSearchParams;
}

export function useRoute(): Route {
  const href = useSyncExternalStore(subscribe, current, current);
  const url = new URL(href, 'http://x');
  return { path: url.pathname, parts: url.pathname.split('/').filter(Boolean).map(decodeURIComponent), query: url.searchParams };
}

/** A same-origin link that navigates without reloading (modifier clicks open a tab as usual). */
export function Link({ to, onClick, ...rest }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const click = (event: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={click} {...rest} />;
}

export const href = {
  project: (project: string) => `/projects/${encodeURIComponent(project)}`,
  settings: (project: string, tab = 'members') => `/projects/${encodeURIComponent(project)}/settings/${tab}`,
  repository: (name: string) => `/repository?name=${encodeURIComponent(name)}`,
  artifact: (repository: string, reference: string) =>
    `/artifact?repository=${encodeURIComponent(repository)}&reference=${encodeURIComponent(reference)}`,
  admin: (tab = 'users') => `/admin/${tab}`,
  search: (q: string) => `/search?q=${encodeURIComponent(q)}`,
};

/** Sets document.title for a view. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Berth`;
  }, [title]);
}

import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { ago, isoTime, shortDigest } from './format';
import { Link } from './router';

export interface Async<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `deps` change; a late answer for older deps is dropped. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  const seq = useRef(0);
  useEffect(() => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => mine === seq.current && setState({ data, loading: false }),
      (error: Error) => mine === seq.current && setState({ error, loading: false }),
    );
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/**
 * The row a table shows when it has no rows: "Loading…" until the list has loaded, then `empty`
 * when it is empty. Holding the row's place while loading keeps what sits below the table (a
 * "New …" button) where it is when the answer arrives: a click aimed at it does not land on the
 * row that pushed it down.
 */
export function EmptyRow({ list, colSpan, empty }: { list: Async<unknown[]>; colSpan: number; empty: string }) {
  if (list.data === undefined && !list.error)
    return (
      <tr>
        <td colSpan={colSpan} className="muted" aria-busy="true">
          Loading…
        </td>
      </tr>
    );
  return list.data?.length === 0 ? (
    <tr>
      <td colSpan={colSpan} className="muted">
        {empty}
      </td>
    </tr>
  ) : null;
}

/** Keyset pagination: the cursors of the pages before the current one. */
export function usePager(resetKey: string) {
  const [stack, setStack] = useState<(string | undefined)[]>([undefined]);
  const [key, setKey] = useState(resetKey);
  if (key !== resetKey) {
    setKey(resetKey);
    setStack([undefined]);
  }
  const last = stack[stack.length - 1];
  return {
    last,
    page: stack.length,
    next: (cursor: string) => setStack((s) => [...s, cursor]),
    previous: () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)),
  };
}

export function Pager({
  page,
  next,
  total,
  count,
  onNext,
  onPrevious,
  label,
}: {
  page: number;
  next: string | null | undefined;
  total?: number;
  count: number;
  onNext: (cursor: string) => void;
  onPrevious: () => void;
  label: string;
}) {
  return (
    <nav className="pager" aria-label={`${label} pages`}>
      <button type="button" onClick={onPrevious} disabled={page <= 1}>
        ← Previous
      </button>
      <span aria-live="polite">
        Page {page}
        {total !== undefined ? ` · ${count} shown of ${total.toLocaleString()} ${label}` : ''}
      </span>
      <button type="button" onClick={() => next && onNext(next)} disabled={!next}>
        Next →
      </button>
    </nav>
  );
}

export function ErrorBox({ error }: { error: Error | undefined }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {error.message}
    </p>
  );
}

export function Time({ at }: { at: string | number | null | undefined }) {
  if (at === null || at === undefined) return <span className="muted">never</span>;
  return (
    <time dateTime={new Date(at).toISOString()} title={isoTime(at)}>
      {ago(at)}
    </time>
  );
}

export function Digest({ digest }: { digest: string | null | undefined }) {
  return (
    <code className="digest" title={digest ?? undefined}>
      {shortDigest(digest)}
    </code>
  );
}

export function Badge({ tone, children, title }: { tone: 'ok' | 'warn' | 'bad' | 'info' | 'muted'; children: ReactNode; title?: string }) {
  return (
    <span className={`badge badge-${tone}`} title={title}>
      {children}
    </span>
  );
}

/** Copies `text` to the clipboard; says so in a live region. `label` must start with "Copy pull" (its visible text). */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState<'copied' | 'failed' | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone('copied');
    } catch {
      setDone('failed');
    }
    setTimeout(() => setDone(null), 2000);
  };
  return (
    <button type="button" className="copy" onClick={copy} aria-label={label} title={text}>
      <span aria-hidden="true" className="copy-mark">
        {done === 'copied' ? '✓' : done === 'failed' ? '✗' : ''}
      </span>
      Copy pull
      <span className="visually-hidden" aria-live="polite">
        {done === 'copied' ? 'copied to the clipboard' : done === 'failed' ? 'copying failed' : ''}
      </span>
    </button>
  );
}

/** A meter of used vs limit (no limit: just the usage). */
export function UsageBar({ used, limit, label }: { used: number; limit: number | null; label: string }) {
  const percent = limit ? Math.min(100, Math.round((used / limit) * 100)) : 0;
  return (
    <span className="usage">
      {limit ? (
        <meter min={0} max={limit} value={Math.min(used, limit)} low={limit * 0.8} high={limit * 0.95} optimum={0} aria-label={label} />
      ) : null}
      <span className="usage-text">{limit ? `${percent}%` : 'no quota'}</span>
    </span>
  );
}

/** Filled table skeleton rows so a table keeps its height while it loads (no layout shift). */
export function SkeletonRows({ columns, rows = 10 }: { columns: number; rows?: number }) {
  return (
    <>
      {Array.from({ length: rows }, (_, r) => (
        <tr key={r} className="skeleton" aria-hidden="true">
          {Array.from({ length: columns }, (_, c) => (
            <td key={c}>&nbsp;</td>
          ))}
        </tr>
      ))}
    </>
  );
}

/** Debounced value for search boxes. */
export function useDebounced<T>(value: T, ms = 250): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return debounced;
}

export function Tabs({
  tabs,
  current,
  hrefOf,
  label,
}: {
  tabs: [string, string][];
  current: string;
  hrefOf: (tab: string) => string;
  label: string;
}) {
  return (
    <nav className="tabs" aria-label={label}>
      {tabs.map(([id, title]) => (
        <Link key={id} to={hrefOf(id)} aria-current={id === current ? 'page' : undefined} data-tab={id}>
          {title}
        </Link>
      ))}
    </nav>
  );
}

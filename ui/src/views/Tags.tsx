import { useState } from 'react';
import { api, ok } from '../api/client';
import type { BatchDelete, Page, TagRow } from '../api/types';
import { Badge, CopyButton, Digest, ErrorBox, Pager, SkeletonRows, Time, useAsync, useDebounced, usePager } from '../components';
import { bytes } from '../format';
import { Link, href, useTitle } from '../router';
import { can, projectOf, useSession } from '../session';

const PAGE = 50;

export const KIND_LABEL: Record<string, string> = {
  image: 'image',
  index: 'index',
  helm: 'Helm chart',
  sbom: 'SBOM',
  signature: 'signature',
  attestation: 'attestation',
  model: 'AI model',
  wasm: 'WASM',
  artifact: 'artifact',
};

export function SignatureBadge({ signatures }: { signatures: TagRow['signatures'] | undefined }) {
  if (!signatures || signatures.count === 0) return <Badge tone="muted">unsigned</Badge>;
  // verified is null when the project trusts no key or certificate: nothing to verify with.
  if (signatures.verified === null || signatures.verified === undefined)
    return (
      <Badge tone="info" title={`${signatures.count} signature(s); the project trusts no key to verify them with`}>
        signed
      </Badge>
    );
  return signatures.verified ? (
    <Badge tone="ok" title={`${signatures.count} signature(s), at least one verified`}>
      ✓ signed
    </Badge>
  ) : (
    <Badge tone="warn" title={`${signatures.count} signature(s), none verified`}>
      signed, unverified
    </Badge>
  );
}

export function ScanBadge({ scan }: { scan: TagRow['scan'] }) {
  if (!scan) return <Badge tone="muted">not scanned</Badge>;
  if (scan.status !== 'complete') return <Badge tone="warn">scan {scan.status}</Badge>;
  const worst = scan.critical
    ? ['bad', `${scan.critical} critical`]
    : scan.high
      ? ['bad', `${scan.high} high`]
      : scan.medium
        ? ['warn', `${scan.medium} medium`]
        : scan.low
          ? ['info', `${scan.low} low`]
          : ['ok', 'no vulnerabilities'];
  return (
    <Badge
      tone={worst[0] as 'ok'}
      title={`critical ${scan.critical}, high ${scan.high}, medium ${scan.medium}, low ${scan.low}, unknown ${scan.unknown}`}
    >
      {worst[1]}
    </Badge>
  );
}

export function Tags({ repository }: { repository: string }) {
  useTitle(`${repository} · tags`);
  const session = useSession();
  const project = projectOf(repository);
  const [q, setQ] = useState('');
  const [sort, setSort] = useState<'name' | 'pushed'>('pushed');
  const [order, setOrder] = useState<'asc' | 'desc'>('desc');
  const query = useDebounced(q);
  const pager = usePager(`${repository}|${query}|${sort}|${order}`);
  const page = useAsync(
    () =>
      ok<Page<TagRow>>(
        api.GET('/api/v1/repositories/{name}/tags', {
          params: { path: { name: repository }, query: { q: query || undefined, sort, order, n: String(PAGE), last: pager.last } },
        }),
      ),
    [repository, query, sort, order, pager.last],
  );
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [result, setResult] = useState<BatchDelete | null>(null);
  const [error, setError] = useState<Error>();
  const mayDelete = can(session, project, 'delete');
  const host = session.info?.registryHost ?? location.host;
  const items = page.data?.items ?? [];
  const allSelected = items.length > 0 && items.every((t) => selected.has(t.tag));

  const toggle = (tag: string) =>
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(tag)) next.delete(tag);
      else next.add(tag);
      return next;
    });
  const toggleAll = () => setSelected(allSelected ? new Set() : new Set(items.map((t) => t.tag)));

  const deleteSelected = async () => {
    const tags = [...selected];
    if (!window.confirm(`Delete ${tags.length} tag(s) from ${repository}?`)) return;
    try {
      const answer = await ok<BatchDelete>(
        api.POST('/api/v1/repositories/{name}/tags/delete', { params: { path: { name: repository } }, body: { tags } }),
      );
      setResult(answer);
      setSelected(new Set(answer.failed.map((f) => f.tag)));
      page.reload();
    } catch (e) {
      setError(e as Error);
    }
  };

  const sortBy = (column: 'name' | 'pushed') => {
    if (sort === column) setOrder(order === 'asc' ? 'desc' : 'asc');
    else {
      setSort(column);
      setOrder(column === 'name' ? 'asc' : 'desc');
    }
  };
  const ariaSort = (column: string) => (sort === column ? (order === 'asc' ? 'ascending' : 'descending') : undefined);

  return (
    <section aria-labelledby="tags-title">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/">Projects</Link> / <Link to={href.project(project)}>{project}</Link> /{' '}
        <span>{repository.slice(project.length + 1) || repository}</span>
      </nav>
      <h1 id="tags-title">{repository}</h1>
      <div className="toolbar">
        <label htmlFor="tag-filter">Search tags</label>
        <input id="tag-filter" type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="tag contains…" />
        {mayDelete ? (
          <button type="button" className="danger" disabled={selected.size === 0} onClick={deleteSelected}>
            Delete selected ({selected.size})
          </button>
        ) : null}
      </div>
      <ErrorBox error={page.error ?? error} />
      {result ? (
        <div className="notice" role="status">
          Deleted {result.deleted.length} tag(s).
          {result.failed.length > 0 ? (
            <ul>
              {result.failed.map((f) => (
                <li key={f.tag}>
                  <strong>{f.tag}</strong>: {f.message}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      <table className="grid tags" aria-busy={page.loading}>
        <caption className="visually-hidden">Tags of {repository}</caption>
        <thead>
          <tr>
            {mayDelete ? (
              <th scope="col" className="check">
                <input type="checkbox" aria-label="Select all tags on this page" checked={allSelected} onChange={toggleAll} />
              </th>
            ) : null}
            <th scope="col" aria-sort={ariaSort('name')}>
              <button type="button" className="sort" onClick={() => sortBy('name')}>
                Tag{sort === 'name' ? (order === 'asc' ? ' ▲' : ' ▼') : ''}
              </button>
            </th>
            <th scope="col">Kind</th>
            <th scope="col">Digest</th>
            <th scope="col" className="num">
              Size
            </th>
            <th scope="col" aria-sort={ariaSort('pushed')}>
              <button type="button" className="sort" onClick={() => sortBy('pushed')}>
                Pushed{sort === 'pushed' ? (order === 'asc' ? ' ▲' : ' ▼') : ''}
              </button>
            </th>
            <th scope="col">Pulled</th>
            <th scope="col">Signature</th>
            <th scope="col">Vulnerabilities</th>
            <th scope="col">
              <span className="visually-hidden">Pull command</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {!page.data && page.loading ? <SkeletonRows columns={mayDelete ? 10 : 9} /> : null}
          {items.map((t) => (
            <tr key={t.tag}>
              {mayDelete ? (
                <td className="check">
                  <input type="checkbox" aria-label={`Select tag ${t.tag}`} checked={selected.has(t.tag)} onChange={() => toggle(t.tag)} />
                </td>
              ) : null}
              <td className="tag" title={t.tag}>
                <Link to={href.artifact(repository, t.tag)}>{t.tag}</Link>
              </td>
              <td>
                <Badge tone="info" title={t.artifactType ?? t.mediaType}>
                  {KIND_LABEL[t.kind] ?? t.kind}
                </Badge>
                {t.platforms.length > 1 ? <span className="muted small"> {t.platforms.length} platforms</span> : null}
                {t.sbom ? (
                  <>
                    {' '}
                    <Badge tone="info">SBOM</Badge>
                  </>
                ) : null}
              </td>
              <td>
                <Digest digest={t.digest} />
              </td>
              <td className="num">{bytes(t.size)}</td>
              <td>
                <Time at={t.pushedAt} />
              </td>
              <td>
                <Time at={t.pulledAt} />
              </td>
              <td>
                <SignatureBadge signatures={t.signatures} />
              </td>
              <td>
                <ScanBadge scan={t.scan} />
              </td>
              <td>
                <CopyButton text={`podman pull ${host}/${repository}:${t.tag}`} label={`Copy pull command of ${t.tag}`} />
              </td>
            </tr>
          ))}
          {page.data && items.length === 0 ? (
            <tr>
              <td colSpan={10} className="muted">
                No tags{query ? ` match “${query}”` : ''}.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
      {/* Rendered once the first page is there: below a table that grows from its skeleton, it would be pushed down (a layout shift). */}
      {page.data ? (
        <Pager
          label="tags"
          page={pager.page}
          next={page.data?.next}
          total={page.data?.total}
          count={items.length}
          onNext={pager.next}
          onPrevious={pager.previous}
        />
      ) : null}
    </section>
  );
}

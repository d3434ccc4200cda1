import { api, ok } from '../api/client';
import type { SearchResult } from '../api/types';
import { Digest, ErrorBox, useAsync } from '../components';
import { Link, href, useTitle } from '../router';

export function SearchView({ q }: { q: string }) {
  useTitle(`Search ${q}`);
  const result = useAsync(() => ok<SearchResult>(api.GET('/api/v1/search', { params: { query: { q, n: '50' } } })), [q]);
  const r = result.data;
  return (
    <section aria-labelledby="search-title">
      <h1 id="search-title">Search: “{q}”</h1>
      <ErrorBox error={result.error} />
      <h2>Repositories</h2>
      {r ? (
        r.repositories.length ? (
          <ul className="results">
            {r.repositories.map((repo) => (
              <li key={repo.name}>
                <Link to={href.repository(repo.name)}>{repo.name}</Link>
              </li>
            ))}
          </ul>
        ) : (
          <p className="muted">No repository matches.</p>
        )
      ) : (
        <p className="muted" aria-busy="true">
          Searching…
        </p>
      )}
      <h2>Tags</h2>
      {r ? (
        r.tags.length ? (
          <ul className="results">
            {r.tags.map((t) => (
              <li key={`${t.repository}:${t.tag}`}>
                <Link to={href.artifact(t.repository, t.tag)}>
                  {t.repository}:{t.tag}
                </Link>{' '}
                <Digest digest={t.digest} />
              </li>
            ))}
          </ul>
        ) : (
          <p className="muted">No tag matches.</p>
        )
      ) : null}
    </section>
  );
}

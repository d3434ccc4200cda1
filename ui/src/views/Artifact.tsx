import { useState } from 'react';
import { api, ok } from '../api/client';
import type { Artifact, SignatureStatus, TagHistoryEntry, VulnReport } from '../api/types';
import { Badge, CopyButton, Digest, ErrorBox, Pager, Time, useAsync, usePager } from '../components';
import { bytes } from '../format';
import { Link, href, useTitle } from '../router';
import { can, projectOf, useSession } from '../session';
import { KIND_LABEL } from './Tags';

/** The repository name without its project: the supply-chain endpoints take project and repository apart. */
function split(repository: string): { project: string; repo: string } {
  const project = projectOf(repository);
  return { project, repo: repository.slice(project.length + 1) };
}

export function ArtifactView({ repository, reference }: { repository: string; reference: string }) {
  useTitle(`${repository}:${reference}`);
  const session = useSession();
  const project = projectOf(repository);
  const artifact = useAsync(
    () => ok<Artifact>(api.GET('/api/v1/repositories/{name}/artifacts/{reference}', { params: { path: { name: repository, reference } } })),
    [repository, reference],
  );
  const a = artifact.data;
  const host = session.info?.registryHost ?? location.host;
  const isTag = !reference.includes(':');
  return (
    <section aria-labelledby="artifact-title">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/">Projects</Link> / <Link to={href.project(project)}>{project}</Link> /{' '}
        <Link to={href.repository(repository)}>{repository.slice(project.length + 1) || repository}</Link> / <span>{reference}</span>
      </nav>
      <h1 id="artifact-title">
        {repository}
        {isTag ? `:${reference}` : '@'}
        {isTag ? null : <Digest digest={reference} />}
      </h1>
      <ErrorBox error={artifact.error} />
      {a ? (
        <>
          <dl className="facts">
            <dt>Kind</dt>
            <dd>
              <Badge tone="info">{KIND_LABEL[a.kind] ?? a.kind}</Badge>
            </dd>
            <dt>Digest</dt>
            <dd>
              <code className="wrap">{a.digest}</code>
            </dd>
            <dt>Media type</dt>
            <dd>
              <code>{a.mediaType}</code>
            </dd>
            {a.artifactType ? (
              <>
                <dt>Artifact type</dt>
                <dd>
                  <code>{a.artifactType}</code>
                </dd>
              </>
            ) : null}
            <dt>Size</dt>
            <dd>{bytes(a.size)}</dd>
            <dt>Pushed</dt>
            <dd>
              <Time at={a.pushedAt} />
            </dd>
            <dt>Tags</dt>
            <dd>{a.tags.length ? a.tags.join(', ') : <span className="muted">untagged</span>}</dd>
            <dt>Pull</dt>
            <dd>
              <code>
                podman pull {host}/{repository}
                {isTag ? `:${reference}` : `@${a.digest}`}
              </code>{' '}
              <CopyButton text={`podman pull ${host}/${repository}${isTag ? `:${reference}` : `@${a.digest}`}`} label="Copy pull command" />
            </dd>
          </dl>
          <Signatures repository={repository} digest={a.digest} />
          <ConfigSummary artifact={a} />
          {a.platforms.length > 0 ? <Platforms repository={repository} artifact={a} /> : null}
          {a.layers.length > 0 ? <Layers artifact={a} /> : null}
          <Referrers repository={repository} artifact={a} />
          <Sbom repository={repository} digest={a.digest} />
          <Vulnerabilities repository={repository} digest={a.digest} />
          {isTag ? (
            <TagHistory repository={repository} tag={reference} mayRestore={can(session, project, 'push')} onRestored={artifact.reload} />
          ) : null}
          <details className="panel">
            <summary>
              <h2>Manifest</h2>
            </summary>
            <pre className="json" tabIndex={0} aria-label="Manifest JSON">
              {JSON.stringify(a.manifest, null, 2)}
            </pre>
          </details>
        </>
      ) : artifact.loading ? (
        <p aria-busy="true" className="muted">
          Loading…
        </p>
      ) : null}
    </section>
  );
}

function Signatures({ repository, digest }: { repository: string; digest: string }) {
  const { project, repo } = split(repository);
  const status = useAsync(
    () =>
      ok<SignatureStatus>(
        api.GET('/api/v1/projects/{project}/repositories/{repository}/artifacts/{digest}/signatures', {
          params: { path: { project, repository: repo, digest } },
        }),
      ),
    [project, repo, digest],
  );
  const s = status.data;
  return (
    <section className="panel" aria-labelledby="sig-title">
      <h2 id="sig-title">
        Signatures {s?.policy && s.policy.mode !== 'off' ? <span className="muted small">policy: {s.policy.mode} </span> : null}
        {s ? (
          s.signatures.length === 0 ? (
            <Badge tone="muted">unsigned</Badge>
          ) : s.verified ? (
            <Badge tone="ok">✓ verified</Badge>
          ) : (
            <Badge tone="warn">not verified</Badge>
          )
        ) : null}
      </h2>
      {status.error ? <p className="muted">{status.error.message}</p> : null}
      {s && s.signatures.length > 0 ? (
        <table className="grid compact">
          <thead>
            <tr>
              <th scope="col">Format</th>
              <th scope="col">Found as</th>
              <th scope="col">Manifest</th>
              <th scope="col">Verification</th>
            </tr>
          </thead>
          <tbody>
            {s.signatures.map((sig) => (
              <tr key={sig.manifest}>
                <td>{sig.format}</td>
                <td>{sig.source.kind === 'tag' ? `tag ${sig.source.tag}` : 'referrer'}</td>
                <td>
                  <Digest digest={sig.manifest} />
                </td>
                <td>
                  {sig.valid ? (
                    <Badge tone="ok">valid</Badge>
                  ) : (
                    <Badge tone="warn" title={sig.reason}>
                      not verified
                    </Badge>
                  )}{' '}
                  <span className="muted small">{sig.valid ? (sig.signer?.name ?? sig.signer?.subject ?? '') : sig.reason}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

type Json = Record<string, unknown>;
const asObject = (v: unknown): Json | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : null);

/** Image config (env, entrypoint, history), Helm Chart.yaml fields, ModelPack config, or the scalar fields of any JSON config. */
export function ConfigSummary({ artifact }: { artifact: Artifact }) {
  const config = artifact.config;
  if (!config) return null;
  const image = asObject(config.config);
  if (artifact.kind === 'image' && (image || config.rootfs)) {
    const history = Array.isArray(config.history) ? (config.history as Json[]) : [];
    return (
      <section className="panel" aria-labelledby="config-title">
        <h2 id="config-title">Image configuration</h2>
        <dl className="facts">
          <dt>Platform</dt>
          <dd>{[config.os, config.architecture, config.variant].filter(Boolean).join('/') || '—'}</dd>
          <dt>Entrypoint</dt>
          <dd>
            <code>{JSON.stringify(image?.Entrypoint ?? null)}</code>
          </dd>
          <dt>Command</dt>
          <dd>
            <code>{JSON.stringify(image?.Cmd ?? null)}</code>
          </dd>
          <dt>Working dir</dt>
          <dd>
            <code>{String(image?.WorkingDir ?? '') || '—'}</code>
          </dd>
          <dt>User</dt>
          <dd>
            <code>{String(image?.User ?? '') || '—'}</code>
          </dd>
          <dt>Environment</dt>
          <dd>
            {Array.isArray(image?.Env) ? (
              <ul className="plain">
                {(image.Env as string[]).map((e) => (
                  <li key={e}>
                    <code>{e}</code>
                  </li>
                ))}
              </ul>
            ) : (
              '—'
            )}
          </dd>
          <dt>Created</dt>
          <dd>
            <Time at={typeof config.created === 'string' ? config.created : null} />
          </dd>
        </dl>
        {history.length > 0 ? (
          <details>
            <summary>History ({history.length} steps)</summary>
            <ol className="history">
              {history.map((h, i) => (
                <li key={i}>
                  <code>{String(h.created_by ?? '')}</code>
                  {h.empty_layer ? <span className="muted small"> (no layer)</span> : null}
                </li>
              ))}
            </ol>
          </details>
        ) : null}
      </section>
    );
  }
  const title =
    artifact.kind === 'helm' ? 'Helm chart (Chart.yaml)' : artifact.kind === 'model' ? 'Model (ModelPack config)' : 'Configuration';
  // ModelPack: descriptor {name, family, version…}, config {architecture, format, paramSize, precision…}.
  const groups: [string, Json][] = [];
  const scalars: Json = {};
  for (const [key, value] of Object.entries(config)) {
    const nested = asObject(value);
    if (nested) groups.push([key, nested]);
    else scalars[key] = value;
  }
  return (
    <section className="panel" aria-labelledby="config-title">
      <h2 id="config-title">{title}</h2>
      <Fields fields={scalars} />
      {groups.map(([name, fields]) => (
        <div key={name}>
          <h3>{name}</h3>
          <Fields fields={fields} />
        </div>
      ))}
    </section>
  );
}

function Fields({ fields }: { fields: Json }) {
  const entries = Object.entries(fields);
  if (entries.length === 0) return null;
  return (
    <dl className="facts">
      {entries.map(([key, value]) => (
        <div key={key} className="fact">
          <dt>{key}</dt>
          <dd>
            {typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? (
              String(value)
            ) : (
              <code>{JSON.stringify(value)}</code>
            )}
          </dd>
        </div>
      ))}
    </dl>
  );
}

function Platforms({ repository, artifact }: { repository: string; artifact: Artifact }) {
  return (
    <section className="panel" aria-labelledby="platforms-title">
      <h2 id="platforms-title">Platforms</h2>
      <table className="grid compact">
        <thead>
          <tr>
            <th scope="col">Platform</th>
            <th scope="col">Digest</th>
          </tr>
        </thead>
        <tbody>
          {artifact.platforms.map((p, i) => (
            <tr key={p.digest ?? i}>
              <td>{[p.os, p.architecture, p.variant].filter(Boolean).join('/')}</td>
              <td>
                {p.digest ? (
                  <Link to={href.artifact(repository, p.digest)}>
                    <Digest digest={p.digest} />
                  </Link>
                ) : (
                  '—'
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Layers({ artifact }: { artifact: Artifact }) {
  const total = artifact.layers.reduce((sum, l) => sum + l.size, 0);
  return (
    <section className="panel" aria-labelledby="layers-title">
      <h2 id="layers-title">
        Layers{' '}
        <span className="muted small">
          {artifact.layers.length} · {bytes(total)}
        </span>
      </h2>
      <table className="grid compact">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Digest</th>
            <th scope="col">Media type</th>
            <th scope="col" className="num">
              Size
            </th>
          </tr>
        </thead>
        <tbody>
          {artifact.layers.map((l, i) => (
            <tr key={`${l.digest}-${i}`}>
              <td>{i + 1}</td>
              <td>
                <Digest digest={l.digest} />{' '}
                {l.annotations?.['org.opencontainers.image.title'] ? (
                  <span className="muted small">{l.annotations['org.opencontainers.image.title']}</span>
                ) : null}
              </td>
              <td>
                <code className="small">{l.mediaType}</code>
              </td>
              <td className="num">{bytes(l.size)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Referrers({ repository, artifact }: { repository: string; artifact: Artifact }) {
  if (artifact.referrers.length === 0) return null;
  return (
    <section className="panel" aria-labelledby="referrers-title">
      <h2 id="referrers-title">Referrers</h2>
      <ul className="tree">
        {artifact.referrers.map((r) => (
          <li key={r.digest}>
            <Badge tone="info">{KIND_LABEL[r.kind ?? ''] ?? r.kind ?? 'artifact'}</Badge>{' '}
            <Link to={href.artifact(repository, r.digest)}>
              <Digest digest={r.digest} />
            </Link>{' '}
            <code className="small">{r.artifactType ?? r.mediaType}</code> <span className="muted small">{bytes(r.size)}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

interface Pkg {
  name: string;
  version: string;
  purl?: string;
}

/** Packages of an SPDX (packages[]) or CycloneDX (components[]) document. */
export function sbomPackages(doc: unknown): Pkg[] {
  const d = asObject(doc);
  if (!d) return [];
  if (Array.isArray(d.packages))
    return (d.packages as Json[]).map((p) => ({
      name: String(p.name ?? ''),
      version: String(p.versionInfo ?? ''),
      purl: (p.externalRefs as Json[] | undefined)?.find((r) => r.referenceType === 'purl')?.referenceLocator as string | undefined,
    }));
  if (Array.isArray(d.components))
    return (d.components as Json[]).map((c) => ({
      name: String(c.name ?? ''),
      version: String(c.version ?? ''),
      purl: c.purl as string | undefined,
    }));
  return [];
}

function Sbom({ repository, digest }: { repository: string; digest: string }) {
  const { project, repo } = split(repository);
  const [filter, setFilter] = useState('');
  const doc = useAsync(
    () =>
      ok<unknown>(
        api.GET('/api/v1/projects/{project}/repositories/{repository}/artifacts/{digest}/sbom', {
          params: { path: { project, repository: repo, digest } },
        }),
      ),
    [project, repo, digest],
  );
  const packages = sbomPackages(doc.data).filter((p) => p.name.toLowerCase().includes(filter.toLowerCase()));
  if (doc.error) return null; // no SBOM: nothing to show
  if (!doc.data) return null;
  return (
    <section className="panel" aria-labelledby="sbom-title">
      <h2 id="sbom-title">
        SBOM <span className="muted small">{sbomPackages(doc.data).length} packages</span>
      </h2>
      <label htmlFor="sbom-filter">Filter packages</label>{' '}
      <input id="sbom-filter" type="search" value={filter} onChange={(e) => setFilter(e.target.value)} />
      <div className="scroll" tabIndex={0} role="region" aria-label="SBOM packages">
        <table className="grid compact">
          <thead>
            <tr>
              <th scope="col">Package</th>
              <th scope="col">Version</th>
              <th scope="col">Package URL</th>
            </tr>
          </thead>
          <tbody>
            {packages.slice(0, 500).map((p, i) => (
              <tr key={`${p.name}-${p.version}-${i}`}>
                <td>{p.name}</td>
                <td>{p.version}</td>
                <td>
                  <code className="small">{p.purl ?? ''}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {packages.length > 500 ? <p className="muted small">First 500 of {packages.length}; filter to narrow.</p> : null}
    </section>
  );
}

const SEVERITIES = ['Critical', 'High', 'Medium', 'Low', 'Unknown'];

export function Vulnerabilities({ repository, digest }: { repository: string; digest: string }) {
  const { project, repo } = split(repository);
  const [severity, setSeverity] = useState('all');
  const report = useAsync(
    () =>
      ok<VulnReport>(
        api.GET('/api/v1/projects/{project}/repositories/{repository}/artifacts/{digest}/vulnerabilities', {
          params: { path: { project, repository: repo, digest } },
        }),
      ),
    [project, repo, digest],
  );
  const r = report.data;
  const findings = (r?.findings ?? []).filter((f) => severity === 'all' || f.severity.toLowerCase() === severity.toLowerCase());
  return (
    <section className="panel" aria-labelledby="vuln-title">
      <h2 id="vuln-title">Vulnerabilities</h2>
      {report.error ? <p className="muted">{report.error.message}</p> : null}
      {r ? (
        <>
          <p>
            Scanned <Time at={r.scannedAt} />, {r.packages} packages:{' '}
            {SEVERITIES.map((s) => (
              <span key={s} className={`sev sev-${s.toLowerCase()}`}>
                {s} {r.summary[s] ?? r.summary[s.toLowerCase()] ?? 0}
              </span>
            ))}
          </p>
          <label htmlFor="severity">Severity</label>{' '}
          <select id="severity" value={severity} onChange={(e) => setSeverity(e.target.value)}>
            <option value="all">all</option>
            {SEVERITIES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
          <table className="grid compact">
            <thead>
              <tr>
                <th scope="col">Advisory</th>
                <th scope="col">Severity</th>
                <th scope="col">Package</th>
                <th scope="col">Installed</th>
                <th scope="col">Fixed in</th>
              </tr>
            </thead>
            <tbody>
              {findings.map((f) => (
                <tr key={`${f.id}-${f.package}-${f.installed}`}>
                  <td>
                    {f.links[0] ? (
                      <a href={f.links[0]} rel="noreferrer noopener" target="_blank">
                        {f.id}
                      </a>
                    ) : (
                      f.id
                    )}{' '}
                    <span className="muted small">{f.aliases.slice(0, 2).join(', ')}</span>
                  </td>
                  <td>
                    <span className={`sev sev-${f.severity.toLowerCase()}`}>{f.severity}</span>
                  </td>
                  <td>{f.package}</td>
                  <td>{f.installed}</td>
                  <td>{f.fixed ?? <span className="muted">no fix</span>}</td>
                </tr>
              ))}
              {findings.length === 0 ? (
                <tr>
                  <td colSpan={5} className="muted">
                    No findings{severity !== 'all' ? ` of severity ${severity}` : ''}.
                  </td>
                </tr>
              ) : null}
            </tbody>
          </table>
        </>
      ) : null}
    </section>
  );
}

const HISTORY_PAGE = 20;

function TagHistory({
  repository,
  tag,
  mayRestore,
  onRestored,
}: {
  repository: string;
  tag: string;
  mayRestore: boolean;
  onRestored: () => void;
}) {
  // Filtered and paged by the server (?tag=, ?n=, ?last=): a busy repository's other tags never load.
  const pager = usePager(`${repository}:${tag}`);
  const history = useAsync(
    () =>
      ok<{ entries: TagHistoryEntry[]; next: string | null }>(
        api.GET('/api/v1/repositories/{name}/tag-history', {
          params: { path: { name: repository }, query: { tag, n: String(HISTORY_PAGE), ...(pager.last ? { last: pager.last } : {}) } },
        }),
      ),
    [repository, tag, pager.last],
  );
  const [error, setError] = useState<Error>();
  const entries = history.data?.entries ?? [];
  const restore = async (digest: string) => {
    if (!window.confirm(`Point ${tag} back at ${digest}?`)) return;
    try {
      await ok(
        api.POST('/api/v1/repositories/{name}/tags/{tag}/restore', { params: { path: { name: repository, tag } }, body: { digest } }),
      );
      history.reload();
      onRestored();
    } catch (e) {
      setError(e as Error);
    }
  };
  if (history.error) return null;
  return (
    <section className="panel" aria-labelledby="history-title">
      <h2 id="history-title">Tag history</h2>
      <ErrorBox error={error} />
      <table className="grid compact">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">From</th>
            <th scope="col">To</th>
            <th scope="col">By</th>
            {mayRestore ? (
              <th scope="col">
                <span className="visually-hidden">Restore</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.id}>
              <td>
                <Time at={e.at} />
              </td>
              <td>
                <Digest digest={e.oldDigest} />
              </td>
              <td>
                <Digest digest={e.newDigest} />
              </td>
              <td>
                {e.actor ?? '—'} {e.via ? <span className="muted small">via {e.via}</span> : null}
              </td>
              {mayRestore ? (
                <td>
                  {e.oldDigest ? (
                    <button type="button" className="small" onClick={() => restore(e.oldDigest!)}>
                      Restore {e.oldDigest.slice(7, 19)}
                    </button>
                  ) : null}
                </td>
              ) : null}
            </tr>
          ))}
          {history.data && entries.length === 0 ? (
            <tr>
              <td colSpan={5} className="muted">
                No changes recorded for this tag.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
      {pager.page > 1 || history.data?.next ? (
        <Pager
          label="tag changes"
          page={pager.page}
          next={history.data?.next}
          count={entries.length}
          onNext={pager.next}
          onPrevious={pager.previous}
        />
      ) : null}
    </section>
  );
}

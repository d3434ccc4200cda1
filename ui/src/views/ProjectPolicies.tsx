import { useState, type FormEvent } from 'react';
import { ApiError, api, ok } from '../api/client';
import type { ProxyBinding, RegistryEndpoint, SignaturePolicy, VulnPolicy } from '../api/types';
import { ErrorBox, Time, useAsync } from '../components';
import { listOf, textOf, useAction } from './forms';

const MODES = ['off', 'audit', 'enforce'] as const;

/** Signature and vulnerability pull policies of a project: structured forms (project admins change them). */
export function Policies({ project, manage }: { project: string; manage: boolean }) {
  const signature = useAsync(
    () => ok<SignaturePolicy>(api.GET('/api/v1/projects/{project}/signature-policy', { params: { path: { project } } })),
    [project],
  );
  const vulnerability = useAsync(
    () => ok<VulnPolicy>(api.GET('/api/v1/projects/{project}/vulnerability-policy', { params: { path: { project } } })),
    [project],
  );
  return (
    <>
      <h2>Signature policy</h2>
      <ErrorBox error={signature.error} />
      {signature.data ? (
        <SignatureForm
          key={signature.data.updatedAt ?? ''}
          project={project}
          policy={signature.data}
          manage={manage}
          onSaved={signature.reload}
        />
      ) : null}
      <h2>Vulnerability policy</h2>
      <ErrorBox error={vulnerability.error} />
      {vulnerability.data ? (
        <VulnForm
          key={JSON.stringify(vulnerability.data)}
          project={project}
          policy={vulnerability.data}
          manage={manage}
          onSaved={vulnerability.reload}
        />
      ) : null}
    </>
  );
}

function ModeSelect({
  id,
  value,
  onChange,
  disabled,
}: {
  id: string;
  value: string;
  onChange: (v: (typeof MODES)[number]) => void;
  disabled: boolean;
}) {
  return (
    <label htmlFor={id}>
      Mode
      <select id={id} value={value} onChange={(e) => onChange(e.target.value as (typeof MODES)[number])} disabled={disabled}>
        <option value="off">off (nothing checked)</option>
        <option value="audit">audit (pulls allowed, violations recorded)</option>
        <option value="enforce">enforce (refused pulls answer 403)</option>
      </select>
    </label>
  );
}

export function SignatureForm({
  project,
  policy,
  manage,
  onSaved,
}: {
  project: string;
  policy: SignaturePolicy;
  manage: boolean;
  onSaved: () => void;
}) {
  const [mode, setMode] = useState(policy.mode);
  const [inheritIndex, setInheritIndex] = useState(policy.inheritIndex);
  const [keyName, setKeyName] = useState('');
  const [pem, setPem] = useState('');
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const path = { params: { path: { project } } };
  const save = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    if (
      (await action.run(() => ok(api.PUT('/api/v1/projects/{project}/signature-policy', { ...path, body: { mode, inheritIndex } })))) !==
      undefined
    ) {
      setSaved(true);
      onSaved();
    }
  };
  const addKey = async (event: FormEvent) => {
    event.preventDefault();
    if (
      (await action.run(() =>
        ok(api.POST('/api/v1/projects/{project}/signature-policy/keys', { ...path, body: { name: keyName, pem } })),
      )) !== undefined
    )
      onSaved();
  };
  const removeKey = async (id: number, name: string) => {
    if (!window.confirm(`Stop trusting ${name}?`)) return;
    await action.run(() =>
      ok(api.DELETE('/api/v1/projects/{project}/signature-policy/keys/{id}', { params: { path: { project, id: String(id) } } })),
    );
    onSaved();
  };
  return (
    <div className="panel">
      <form className="form-grid" onSubmit={save} aria-label="Signature policy">
        <ModeSelect id="sig-mode" value={mode} onChange={setMode} disabled={!manage} />
        <label className="check">
          <input type="checkbox" checked={inheritIndex} onChange={(e) => setInheritIndex(e.target.checked)} disabled={!manage} /> A child of
          a verified index counts as verified
        </label>
        {manage ? (
          <div className="form-actions">
            <button type="submit" className="primary" disabled={action.busy}>
              Save signature policy
            </button>
            {saved ? <span role="status">Saved.</span> : null}
            {policy.updatedBy ? (
              <span className="muted small">
                last changed by {policy.updatedBy} <Time at={policy.updatedAt} />
              </span>
            ) : null}
          </div>
        ) : null}
      </form>
      <table className="grid compact">
        <caption>Trusted keys and certificates</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Kind</th>
            <th scope="col">Fingerprint</th>
            {manage ? (
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>
          {policy.keys.map((k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td>{k.kind}</td>
              <td>
                <code className="small">{k.fingerprint}</code>
              </td>
              {manage ? (
                <td>
                  <button type="button" className="danger small" onClick={() => removeKey(k.id, k.name)} aria-label={`Remove ${k.name}`}>
                    Remove
                  </button>
                </td>
              ) : null}
            </tr>
          ))}
          {policy.keys.length === 0 ? (
            <tr>
              <td colSpan={manage ? 4 : 3} className="muted">
                No trusted keys.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
      {manage ? (
        <form className="form-grid" onSubmit={addKey} aria-label="Trust a key">
          <label>
            Key name
            <input required value={keyName} onChange={(e) => setKeyName(e.target.value)} />
          </label>
          <label>
            Public key or certificate (PEM)
            <textarea
              required
              rows={3}
              value={pem}
              onChange={(e) => setPem(e.target.value)}
              spellCheck={false}
              placeholder="-----BEGIN PUBLIC KEY-----"
            />
          </label>
          <div className="form-actions">
            <button type="submit">Trust key</button>
          </div>
        </form>
      ) : null}
      <ErrorBox error={action.error} />
    </div>
  );
}

export function VulnForm({
  project,
  policy,
  manage,
  onSaved,
}: {
  project: string;
  policy: VulnPolicy;
  manage: boolean;
  onSaved: () => void;
}) {
  const [mode, setMode] = useState(policy.mode);
  const [severity, setSeverity] = useState(policy.severity);
  const [allowlist, setAllowlist] = useState(textOf(policy.allowlist));
  const [unscanned, setUnscanned] = useState(policy.unscanned);
  const [grace, setGrace] = useState(String(policy.graceSeconds ?? 0));
  const [inheritIndex, setInheritIndex] = useState(policy.inheritIndex);
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const save = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    const body = {
      mode,
      severity,
      allowlist: listOf(allowlist),
      unscanned,
      graceSeconds: unscanned === 'grace' ? Number(grace) : 0,
      inheritIndex,
    };
    if (
      (await action.run(() => ok(api.PUT('/api/v1/projects/{project}/vulnerability-policy', { params: { path: { project } }, body })))) !==
      undefined
    ) {
      setSaved(true);
      onSaved();
    }
  };
  return (
    <form className="panel form-grid" onSubmit={save} aria-label="Vulnerability policy">
      <ModeSelect id="vuln-mode" value={mode} onChange={setMode} disabled={!manage} />
      <label>
        Refuse from severity
        <select value={severity} onChange={(e) => setSeverity(e.target.value as typeof severity)} disabled={!manage}>
          {['low', 'medium', 'high', 'critical'].map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </label>
      <label>
        Unscanned artifacts
        <select value={unscanned} onChange={(e) => setUnscanned(e.target.value as typeof unscanned)} disabled={!manage}>
          <option value="allow">allow</option>
          <option value="deny">deny</option>
          <option value="grace">grace (allowed for a while after the push)</option>
        </select>
      </label>
      {unscanned === 'grace' ? (
        <label>
          Grace (seconds)
          <input type="number" min={1} required value={grace} onChange={(e) => setGrace(e.target.value)} disabled={!manage} />
        </label>
      ) : null}
      <label>
        Allowlist (vulnerability ids)
        <textarea
          rows={2}
          value={allowlist}
          onChange={(e) => setAllowlist(e.target.value)}
          placeholder="CVE-2024-1234, GHSA-xxxx-xxxx-xxxx"
          disabled={!manage}
          spellCheck={false}
        />
      </label>
      <label className="check">
        <input type="checkbox" checked={inheritIndex} onChange={(e) => setInheritIndex(e.target.checked)} disabled={!manage} /> A child
        without a scan is judged by its index's scan
      </label>
      {manage ? (
        <div className="form-actions">
          <button type="submit" className="primary" disabled={action.busy}>
            Save vulnerability policy
          </button>
          {saved ? <span role="status">Saved.</span> : null}
        </div>
      ) : null}
      <div className="form-actions">
        <ErrorBox error={action.error} />
      </div>
    </form>
  );
}

/** The project's pull-through cache binding: bind to an endpoint, edit, unbind (system administrators). */
export function ProxyCache({ project, admin }: { project: string; admin: boolean }) {
  // 404: the project is no cache (not an error to show).
  const binding = useAsync(
    () =>
      ok<ProxyBinding>(api.GET('/api/v1/projects/{project}/proxy-cache', { params: { path: { project } } })).catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }),
    [project],
  );
  const endpoints = useAsync(() => (admin ? ok<RegistryEndpoint[]>(api.GET('/api/v1/registries')) : Promise.resolve([])), [admin]);
  const b = binding.data;
  const [form, setForm] = useState<{ endpoint: string; namespace: string; ttl: string; keep: 'default' | 'keep' | 'delete' } | null>(null);
  const action = useAction();
  const edit = () =>
    setForm({
      endpoint: b?.endpoint ?? '',
      namespace: b?.namespace ?? '',
      ttl: b ? String(b.tagTtlSeconds) : '',
      keep: b?.keepDeletedTags === true ? 'keep' : b?.keepDeletedTags === false ? 'delete' : 'default',
    });
  const save = async (event: FormEvent) => {
    event.preventDefault();
    if (!form) return;
    const body = {
      endpoint: form.endpoint,
      namespace: form.namespace.trim() || null,
      ...(form.ttl.trim() ? { tagTtlSeconds: Number(form.ttl) } : {}),
      keepDeletedTags: form.keep === 'default' ? null : form.keep === 'keep',
    };
    if (
      (await action.run(() => ok(api.PUT('/api/v1/projects/{project}/proxy-cache', { params: { path: { project } }, body })))) !== undefined
    ) {
      setForm(null);
      binding.reload();
    }
  };
  const unbind = async () => {
    if (!window.confirm(`Unbind ${project} from its upstream? Cached content stays; pushes are accepted again.`)) return;
    await action.run(() => ok(api.DELETE('/api/v1/projects/{project}/proxy-cache', { params: { path: { project } } })));
    binding.reload();
  };
  return (
    <>
      <h2>Proxy cache</h2>
      <ErrorBox error={binding.error ?? action.error} />
      {b ? (
        <dl className="facts">
          <div className="fact">
            <dt>Upstream endpoint</dt>
            <dd>{b.endpoint ?? '—'}</dd>
          </div>
          <div className="fact">
            <dt>Namespace</dt>
            <dd>{b.namespace ?? 'none'}</dd>
          </div>
          <div className="fact">
            <dt>Tag revalidation</dt>
            <dd>every {b.tagTtlSeconds} s</dd>
          </div>
          <div className="fact">
            <dt>Tags deleted upstream</dt>
            <dd>{b.keepDeletedTags === null ? 'server default' : b.keepDeletedTags ? 'kept' : 'deleted'}</dd>
          </div>
        </dl>
      ) : binding.data === null ? (
        <p className="muted">{project} is a normal project, not a pull-through cache.</p>
      ) : null}
      {!admin ? (
        <p className="muted">Only a system administrator binds a project to an upstream registry.</p>
      ) : form === null ? (
        binding.data !== undefined ? (
          <p>
            <button type="button" className="primary" onClick={edit}>
              {b ? 'Edit binding' : 'Bind to a registry endpoint'}
            </button>{' '}
            {b ? (
              <button type="button" className="danger" onClick={unbind}>
                Unbind
              </button>
            ) : null}
          </p>
        ) : null
      ) : (
        <form className="panel form-grid" onSubmit={save} aria-label="Proxy-cache binding">
          <label>
            Registry endpoint
            <select required value={form.endpoint} onChange={(e) => setForm({ ...form, endpoint: e.target.value })}>
              <option value="">(choose)</option>
              {(endpoints.data ?? []).map((r) => (
                <option key={r.name}>{r.name}</option>
              ))}
            </select>
          </label>
          <label>
            Upstream namespace (empty: none)
            <input value={form.namespace} onChange={(e) => setForm({ ...form, namespace: e.target.value })} placeholder="library" />
          </label>
          <label>
            Tag revalidation (seconds, empty: server default)
            <input type="number" min={0} value={form.ttl} onChange={(e) => setForm({ ...form, ttl: e.target.value })} />
          </label>
          <label>
            Tags deleted upstream
            <select value={form.keep} onChange={(e) => setForm({ ...form, keep: e.target.value as typeof form.keep })}>
              <option value="default">server default</option>
              <option value="keep">stay pullable from the cache</option>
              <option value="delete">are deleted from the cache</option>
            </select>
          </label>
          <div className="form-actions">
            <button type="submit" className="primary" disabled={action.busy}>
              Save binding
            </button>
            <button type="button" onClick={() => setForm(null)}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </>
  );
}

import { useState, type FormEvent } from 'react';
import { api, ok } from '../api/client';
import type { PingResult, RegistryEndpoint } from '../api/types';
import { Badge, EmptyRow, ErrorBox, Time, useAsync } from '../components';
import { useAction } from './forms';

const KINDS = ['berth', 'distribution', 'harbor', 'docker-hub', 'other'] as const;

/** Registry endpoints (system administrators): create, edit, test connection, delete. */
export function Registries() {
  const endpoints = useAsync(() => ok<RegistryEndpoint[]>(api.GET('/api/v1/registries')), []);
  const [editing, setEditing] = useState<RegistryEndpoint | 'new' | null>(null);
  const [pings, setPings] = useState<Record<string, PingResult | 'testing'>>({});
  const action = useAction();
  const ping = async (name: string) => {
    setPings((p) => ({ ...p, [name]: 'testing' }));
    const result = await action.run(() => ok<PingResult>(api.POST('/api/v1/registries/{name}/ping', { params: { path: { name } } })));
    setPings((p) => {
      const { [name]: _, ...rest } = p;
      return result ? { ...p, [name]: result } : rest;
    });
  };
  const remove = async (name: string) => {
    if (!window.confirm(`Delete the registry endpoint ${name}?`)) return;
    await action.run(() => ok(api.DELETE('/api/v1/registries/{name}', { params: { path: { name } } })));
    endpoints.reload();
  };
  return (
    <>
      <h2>Registry endpoints</h2>
      <ErrorBox error={endpoints.error ?? action.error} />
      <div className="scroll" tabIndex={0} role="region" aria-label="Registry endpoints">
        <table className="grid compact">
          <caption className="visually-hidden">Registry endpoints</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">URL</th>
              <th scope="col">Kind</th>
              <th scope="col">Credentials</th>
              <th scope="col">TLS</th>
              <th scope="col">Updated</th>
              <th scope="col">Connection</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(endpoints.data ?? []).map((r) => (
              <tr key={r.name}>
                <td>{r.name}</td>
                <td>
                  <code className="small">{r.url}</code>
                </td>
                <td>{r.kind}</td>
                <td>{r.username ? `${r.username}${r.hasCredential ? ' (secret set)' : ''}` : 'anonymous'}</td>
                <td>{r.insecure ? <Badge tone="warn">not verified</Badge> : r.hasCaBundle ? 'own CA' : 'system CAs'}</td>
                <td>
                  <Time at={r.updatedAt} />
                </td>
                <td aria-live="polite">
                  <PingCell result={pings[r.name]} />
                </td>
                <td>
                  <button type="button" className="small" onClick={() => ping(r.name)} aria-label={`Test connection to ${r.name}`}>
                    Test connection
                  </button>{' '}
                  <button type="button" className="small" onClick={() => setEditing(r)} aria-label={`Edit ${r.name}`}>
                    Edit
                  </button>{' '}
                  <button type="button" className="danger small" onClick={() => remove(r.name)} aria-label={`Delete ${r.name}`}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
            <EmptyRow list={endpoints} colSpan={8} empty="No registry endpoints." />
          </tbody>
        </table>
      </div>
      {editing === null ? (
        <button type="button" className="primary" onClick={() => setEditing('new')}>
          New registry endpoint
        </button>
      ) : (
        <EndpointForm
          key={editing === 'new' ? 'new' : editing.name}
          initial={editing === 'new' ? null : editing}
          onDone={() => {
            setEditing(null);
            endpoints.reload();
          }}
        />
      )}
    </>
  );
}

function PingCell({ result }: { result: PingResult | 'testing' | undefined }) {
  if (result === undefined) return <span className="muted">not tested</span>;
  if (result === 'testing') return <span>testing…</span>;
  if (result.ok)
    return (
      <span>
        <Badge tone="ok">reachable</Badge> {result.status}, auth {result.auth}, {result.latencyMs} ms
      </span>
    );
  return (
    <span>
      <Badge tone="bad">failed</Badge> {result.reason ?? `status ${result.status}`}
    </span>
  );
}

/** Create (POST) or edit (PATCH) an endpoint. The credential is write-only: blank keeps it. */
export function EndpointForm({ initial, onDone }: { initial: RegistryEndpoint | null; onDone: () => void }) {
  const [name, setName] = useState(initial?.name ?? '');
  const [url, setUrl] = useState(initial?.url ?? '');
  const [kind, setKind] = useState<(typeof KINDS)[number]>(initial?.kind ?? 'other');
  const [description, setDescription] = useState(initial?.description ?? '');
  const [username, setUsername] = useState(initial?.username ?? '');
  const [credential, setCredential] = useState('');
  const [clearCredential, setClearCredential] = useState(false);
  const [insecure, setInsecure] = useState(initial?.insecure ?? false);
  const [caBundle, setCaBundle] = useState('');
  const [clearCa, setClearCa] = useState(false);
  const action = useAction();
  const title = initial ? `Edit registry endpoint ${initial.name}` : 'New registry endpoint';
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const fields = {
      url,
      kind,
      description,
      insecure,
      username: username.trim() || null,
      // Blank: keep the stored one (edit) or none (create); the clear box sends null.
      ...(credential ? { credential } : clearCredential || (initial && !username.trim()) ? { credential: null } : {}),
      ...(caBundle.trim() ? { caBundle } : clearCa ? { caBundle: null } : {}),
    };
    const done = await action.run(() =>
      initial
        ? ok(api.PATCH('/api/v1/registries/{name}', { params: { path: { name: initial.name } }, body: fields }))
        : ok(api.POST('/api/v1/registries', { body: { name, ...fields } })),
    );
    if (done !== undefined) onDone();
  };
  return (
    <form className="panel form-grid" onSubmit={submit} aria-label={title}>
      <h3 className="form-actions">{title}</h3>
      {initial ? null : (
        <label>
          Name
          <input required value={name} onChange={(e) => setName(e.target.value)} pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}" />
        </label>
      )}
      <label>
        URL
        <input type="url" required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://registry.example" />
      </label>
      <label>
        Kind
        <select value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}>
          {KINDS.map((k) => (
            <option key={k}>{k}</option>
          ))}
        </select>
      </label>
      <label>
        Description
        <input value={description} onChange={(e) => setDescription(e.target.value)} maxLength={1024} />
      </label>
      <label>
        Username (empty: anonymous)
        <input value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="off" />
      </label>
      <label>
        Password or token{initial?.hasCredential ? ' — set; blank keeps it' : ''}
        <input type="password" value={credential} onChange={(e) => setCredential(e.target.value)} autoComplete="new-password" />
      </label>
      {initial?.hasCredential ? (
        <label className="check">
          <input type="checkbox" checked={clearCredential} onChange={(e) => setClearCredential(e.target.checked)} /> Remove the stored
          credential
        </label>
      ) : null}
      <label className="check">
        <input type="checkbox" checked={insecure} onChange={(e) => setInsecure(e.target.checked)} /> Skip TLS certificate verification
        (insecure)
      </label>
      <label>
        CA certificates (PEM){initial?.hasCaBundle ? ' — set; blank keeps them' : ''}
        <textarea
          rows={3}
          value={caBundle}
          onChange={(e) => setCaBundle(e.target.value)}
          placeholder="-----BEGIN CERTIFICATE-----"
          spellCheck={false}
        />
      </label>
      {initial?.hasCaBundle ? (
        <label className="check">
          <input type="checkbox" checked={clearCa} onChange={(e) => setClearCa(e.target.checked)} /> Remove the CA certificates
        </label>
      ) : null}
      <div className="form-actions">
        <button type="submit" className="primary" disabled={action.busy}>
          {initial ? 'Save endpoint' : 'Create endpoint'}
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
      <div className="form-actions">
        <ErrorBox error={action.error} />
      </div>
    </form>
  );
}

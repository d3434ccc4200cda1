import { useState, type FormEvent } from 'react';
import { api, ok } from '../api/client';
import type { Delivery, WebhookPolicy } from '../api/types';
import { Badge, EmptyRow, ErrorBox, useAsync } from '../components';
import { ObjectTable } from './generic';
import { listOf, textOf, useAction } from './forms';

const FORMATS = ['harbor', 'cloudevents', 'distribution', 'distribution-v2'] as const;
export const WEBHOOK_EVENTS = [
  'artifact.pushed',
  'artifact.pulled',
  'artifact.deleted',
  'tag.deleted',
  'quota.warning',
  'quota.exceeded',
  'retention.finished',
  'gc.finished',
  'scan.completed',
  'scan.failed',
  'replication.finished',
] as const;
type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** A project's webhook policies: create, edit, enable/disable, delete; the delivery log of each. */
export function Webhooks({ project, manage }: { project: string; manage: boolean }) {
  const hooks = useAsync(
    () => ok<WebhookPolicy[]>(api.GET('/api/v1/projects/{project}/webhooks', { params: { path: { project } } })),
    [project],
  );
  const [open, setOpen] = useState<number | null>(null);
  const [editing, setEditing] = useState<WebhookPolicy | 'new' | null>(null);
  const action = useAction();
  const path = (id: number) => ({ params: { path: { project, id: String(id) } } });
  const toggle = (w: WebhookPolicy) =>
    action
      .run(() => ok(api.PATCH('/api/v1/projects/{project}/webhooks/{id}', { ...path(w.id), body: { enabled: !w.enabled } })))
      .then(hooks.reload);
  const remove = async (w: WebhookPolicy) => {
    if (!window.confirm(`Delete the webhook ${w.name}? Its pending deliveries are given up.`)) return;
    await action.run(() => ok(api.DELETE('/api/v1/projects/{project}/webhooks/{id}', path(w.id))));
    if (open === w.id) setOpen(null);
    hooks.reload();
  };
  return (
    <>
      <h2>Webhooks</h2>
      <ErrorBox error={hooks.error ?? action.error} />
      <div className="scroll" tabIndex={0} role="region" aria-label="Webhooks">
        <table className="grid compact">
          <caption className="visually-hidden">Webhooks</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">URL</th>
              <th scope="col">Format</th>
              <th scope="col">Events</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(hooks.data ?? []).map((w) => (
              <tr key={w.id}>
                <td>{w.name}</td>
                <td>
                  <code className="small">{w.url}</code>
                </td>
                <td>{w.format}</td>
                <td>{w.events.length ? w.events.join(', ') : 'all'}</td>
                <td>{w.enabled ? <Badge tone="ok">enabled</Badge> : <Badge tone="muted">disabled</Badge>}</td>
                <td>
                  <button type="button" className="small" onClick={() => setOpen(w.id)} aria-label={`Deliveries of ${w.name}`}>
                    Deliveries
                  </button>{' '}
                  {manage ? (
                    <>
                      <button type="button" className="small" onClick={() => setEditing(w)} aria-label={`Edit ${w.name}`}>
                        Edit
                      </button>{' '}
                      <button
                        type="button"
                        className="small"
                        onClick={() => toggle(w)}
                        aria-label={`${w.enabled ? 'Disable' : 'Enable'} ${w.name}`}
                      >
                        {w.enabled ? 'Disable' : 'Enable'}
                      </button>{' '}
                      <button type="button" className="danger small" onClick={() => remove(w)} aria-label={`Delete ${w.name}`}>
                        Delete
                      </button>
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
            <EmptyRow list={hooks} colSpan={6} empty="No webhooks." />
          </tbody>
        </table>
      </div>
      {manage && editing === null ? (
        <button type="button" className="primary" onClick={() => setEditing('new')}>
          New webhook
        </button>
      ) : null}
      {manage && editing !== null ? (
        <WebhookForm
          key={editing === 'new' ? 'new' : editing.id}
          project={project}
          initial={editing === 'new' ? null : editing}
          onDone={() => {
            setEditing(null);
            hooks.reload();
          }}
        />
      ) : null}
      {open !== null ? (
        <Deliveries project={project} id={open} name={hooks.data?.find((w) => w.id === open)?.name ?? String(open)} />
      ) : null}
    </>
  );
}

/** Create (POST, initial null) or edit (PATCH) a webhook; the secret and Authorization header are write-only. */
export function WebhookForm({ project, initial, onDone }: { project: string; initial: WebhookPolicy | null; onDone: () => void }) {
  const [name, setName] = useState(initial?.name ?? '');
  const [url, setUrl] = useState(initial?.url ?? '');
  const [format, setFormat] = useState<(typeof FORMATS)[number]>(initial?.format ?? 'harbor');
  const [events, setEvents] = useState<WebhookEvent[]>((initial?.events ?? []) as WebhookEvent[]);
  const [repositories, setRepositories] = useState(textOf(initial?.repositories));
  const [tags, setTags] = useState(textOf(initial?.tags));
  const [enabled, setEnabled] = useState(initial?.enabled ?? true);
  const [secret, setSecret] = useState('');
  const [clearSecret, setClearSecret] = useState(false);
  const [authHeader, setAuthHeader] = useState('');
  const [clearAuth, setClearAuth] = useState(false);
  const action = useAction();
  const title = initial ? `Edit webhook ${initial.name}` : 'New webhook';
  const toggleEvent = (e: WebhookEvent) => setEvents((list) => (list.includes(e) ? list.filter((x) => x !== e) : [...list, e]));
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const fields = { url, format, events, repositories: listOf(repositories), tags: listOf(tags), enabled };
    // Blank secret/header: keep (edit) or none (create); the clear boxes send null.
    const secrets = {
      ...(secret ? { secret } : clearSecret ? { secret: null } : {}),
      ...(authHeader ? { authHeader } : clearAuth ? { authHeader: null } : {}),
    };
    const done = await action.run(() =>
      initial
        ? ok(
            api.PATCH('/api/v1/projects/{project}/webhooks/{id}', {
              params: { path: { project, id: String(initial.id) } },
              body: { ...fields, ...secrets },
            }),
          )
        : ok(api.POST('/api/v1/projects/{project}/webhooks', { params: { path: { project } }, body: { name, ...fields, ...secrets } })),
    );
    if (done !== undefined) onDone();
  };
  return (
    <form className="panel form-grid" onSubmit={submit} aria-label={title}>
      <h3 className="form-actions">{title}</h3>
      {initial ? null : (
        <label>
          Name
          <input required value={name} onChange={(e) => setName(e.target.value)} pattern="[A-Za-z0-9][\w.\-]{0,99}" />
        </label>
      )}
      <label>
        URL
        <input type="url" required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://hooks.example/berth" />
      </label>
      <label>
        Format
        <select value={format} onChange={(e) => setFormat(e.target.value as typeof format)}>
          {FORMATS.map((f) => (
            <option key={f}>{f}</option>
          ))}
        </select>
      </label>
      <label>
        Repositories (globs, empty: all)
        <input value={repositories} onChange={(e) => setRepositories(e.target.value)} placeholder="app, team/**" />
      </label>
      <label>
        Tags (globs, empty: all)
        <input value={tags} onChange={(e) => setTags(e.target.value)} placeholder="v*" />
      </label>
      <label>
        Secret (HMAC key){initial?.hasSecret ? ' — set; blank keeps it' : ''}
        <input type="password" value={secret} onChange={(e) => setSecret(e.target.value)} autoComplete="new-password" />
      </label>
      {initial?.hasSecret ? (
        <label className="check">
          <input type="checkbox" checked={clearSecret} onChange={(e) => setClearSecret(e.target.checked)} /> Remove the secret
        </label>
      ) : null}
      <label>
        Authorization header{initial?.hasAuthHeader ? ' — set; blank keeps it' : ''}
        <input type="password" value={authHeader} onChange={(e) => setAuthHeader(e.target.value)} autoComplete="off" />
      </label>
      {initial?.hasAuthHeader ? (
        <label className="check">
          <input type="checkbox" checked={clearAuth} onChange={(e) => setClearAuth(e.target.checked)} /> Remove the Authorization header
        </label>
      ) : null}
      <label className="check">
        <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> Enabled
      </label>
      <fieldset>
        <legend>Events (none checked: all)</legend>
        {WEBHOOK_EVENTS.map((e) => (
          <label key={e}>
            <input type="checkbox" checked={events.includes(e)} onChange={() => toggleEvent(e)} /> {e}
          </label>
        ))}
      </fieldset>
      <div className="form-actions">
        <button type="submit" className="primary" disabled={action.busy}>
          {initial ? 'Save webhook' : 'Create webhook'}
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

function Deliveries({ project, id, name }: { project: string; id: number; name: string }) {
  const deliveries = useAsync(
    () => ok<Delivery[]>(api.GET('/api/v1/projects/{project}/webhooks/{id}/deliveries', { params: { path: { project, id: String(id) } } })),
    [project, id],
  );
  return (
    <section className="panel" aria-label={`Deliveries of webhook ${name}`}>
      <h3>Deliveries of webhook {name}</h3>
      <ErrorBox error={deliveries.error} />
      <ObjectTable caption="Deliveries" rows={(deliveries.data ?? []) as never[]} />
    </section>
  );
}

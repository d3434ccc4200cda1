import { useState, type FormEvent } from 'react';
import { api, ok } from '../api/client';
import type { RegistryEndpoint, ReplicationExecution, ReplicationPolicy, ReplicationTask } from '../api/types';
import { Badge, EmptyRow, ErrorBox, Time, useAsync } from '../components';
import { bytes } from '../format';
import { listOf, textOf, useAction } from './forms';

/** Replication policies (system administrators): create, edit, delete, run now; executions and their tasks. */
export function Replication() {
  const policies = useAsync(() => ok<ReplicationPolicy[]>(api.GET('/api/v1/replication/policies')), []);
  const [editing, setEditing] = useState<ReplicationPolicy | 'new' | null>(null);
  const [filter, setFilter] = useState('');
  const [started, setStarted] = useState<string | null>(null);
  const executions = useAsync(
    () =>
      ok<ReplicationExecution[]>(
        api.GET('/api/v1/replication/executions', { params: { query: filter ? { policy: filter, limit: '50' } : { limit: '50' } } }),
      ),
    [filter],
  );
  const [open, setOpen] = useState<number | null>(null);
  const action = useAction();
  const run = async (name: string) => {
    const queued = await action.run(() =>
      ok<ReplicationExecution>(api.POST('/api/v1/replication/policies/{name}/run', { params: { path: { name } } })),
    );
    if (queued) {
      setStarted(`Execution ${queued.id} of ${name} queued.`);
      executions.reload();
    }
  };
  const remove = async (name: string) => {
    if (!window.confirm(`Delete the replication policy ${name}? Its executions stay listed.`)) return;
    await action.run(() => ok(api.DELETE('/api/v1/replication/policies/{name}', { params: { path: { name } } })));
    policies.reload();
  };
  return (
    <>
      <h2>Replication policies</h2>
      <ErrorBox error={policies.error ?? action.error} />
      {started ? <p role="status">{started}</p> : null}
      <div className="scroll" tabIndex={0} role="region" aria-label="Replication policies">
        <table className="grid compact">
          <caption className="visually-hidden">Replication policies</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Direction</th>
              <th scope="col">Endpoint</th>
              <th scope="col">Filters</th>
              <th scope="col">Trigger</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(policies.data ?? []).map((p) => (
              <tr key={p.name}>
                <td>{p.name}</td>
                <td>{p.direction}</td>
                <td>{p.registry}</td>
                <td className="small">
                  repositories {textOf(p.repositories) || 'all'}; tags {textOf(p.tags) || 'all'}
                  {p.onlySigned ? '; signed only' : ''}
                </td>
                <td>
                  {p.trigger}
                  {p.cron ? (
                    <>
                      {' '}
                      <code>{p.cron}</code>
                    </>
                  ) : null}
                </td>
                <td>{p.enabled ? <Badge tone="ok">enabled</Badge> : <Badge tone="muted">disabled</Badge>}</td>
                <td>
                  <button type="button" className="small" onClick={() => run(p.name)} aria-label={`Run now (${p.name})`}>
                    Run now
                  </button>{' '}
                  <button type="button" className="small" onClick={() => setFilter(p.name)} aria-label={`Executions of ${p.name}`}>
                    Executions
                  </button>{' '}
                  <button type="button" className="small" onClick={() => setEditing(p)} aria-label={`Edit ${p.name}`}>
                    Edit
                  </button>{' '}
                  <button type="button" className="danger small" onClick={() => remove(p.name)} aria-label={`Delete ${p.name}`}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
            <EmptyRow list={policies} colSpan={7} empty="No replication policies." />
          </tbody>
        </table>
      </div>
      {editing === null ? (
        <button type="button" className="primary" onClick={() => setEditing('new')}>
          New replication policy
        </button>
      ) : (
        <PolicyForm
          key={editing === 'new' ? 'new' : editing.name}
          initial={editing === 'new' ? null : editing}
          onDone={() => {
            setEditing(null);
            policies.reload();
          }}
        />
      )}
      <h3>Executions{filter ? ` of ${filter}` : ''}</h3>
      {filter ? (
        <button type="button" className="small" onClick={() => setFilter('')}>
          All policies
        </button>
      ) : null}{' '}
      <button type="button" className="small" onClick={executions.reload}>
        Refresh
      </button>
      <ErrorBox error={executions.error} />
      <div className="scroll" tabIndex={0} role="region" aria-label="Replication executions">
        <table className="grid compact">
          <caption className="visually-hidden">Replication executions</caption>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Policy</th>
              <th scope="col">Trigger</th>
              <th scope="col">Status</th>
              <th scope="col">Started</th>
              <th scope="col">Copied / skipped / failed / deleted</th>
              <th scope="col">Bytes</th>
              <th scope="col">
                <span className="visually-hidden">Tasks</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(executions.data ?? []).map((x) => (
              <tr key={x.id}>
                <td>{x.id}</td>
                <td>{x.policy}</td>
                <td>{x.trigger}</td>
                <td>
                  <Badge tone={x.status === 'succeeded' ? 'ok' : x.status === 'failed' ? 'bad' : x.status === 'partial' ? 'warn' : 'info'}>
                    {x.status}
                  </Badge>
                  {x.error ? <span className="small"> {x.error}</span> : null}
                </td>
                <td>
                  <Time at={x.startedAt ?? x.createdAt} />
                </td>
                <td>
                  {x.copied} / {x.skipped} / {x.failed} / {x.deleted}
                </td>
                <td>{bytes(x.bytes)}</td>
                <td>
                  <button type="button" className="small" onClick={() => setOpen(x.id)} aria-label={`Tasks of execution ${x.id}`}>
                    Tasks
                  </button>
                </td>
              </tr>
            ))}
            <EmptyRow list={executions} colSpan={8} empty="No executions." />
          </tbody>
        </table>
      </div>
      {open !== null ? <Tasks id={open} /> : null}
    </>
  );
}

function Tasks({ id }: { id: number }) {
  const tasks = useAsync(
    () => ok<ReplicationTask[]>(api.GET('/api/v1/replication/executions/{id}/tasks', { params: { path: { id: String(id) } } })),
    [id],
  );
  return (
    <section className="panel" aria-label={`Tasks of execution ${id}`}>
      <h3>Tasks of execution {id}</h3>
      <ErrorBox error={tasks.error} />
      <table className="grid compact">
        <caption className="visually-hidden">Per-artifact tasks</caption>
        <thead>
          <tr>
            <th scope="col">Source</th>
            <th scope="col">Destination</th>
            <th scope="col">Reference</th>
            <th scope="col">Outcome</th>
            <th scope="col">Bytes</th>
            <th scope="col">Duration</th>
          </tr>
        </thead>
        <tbody>
          {(tasks.data ?? []).map((t) => (
            <tr key={t.id}>
              <td>{t.sourceRepository}</td>
              <td>{t.destRepository}</td>
              <td>
                <code className="small">{t.reference}</code>
              </td>
              <td>
                <Badge tone={t.status === 'failed' ? 'bad' : t.status === 'copied' ? 'ok' : 'muted'}>{t.status}</Badge>
                {t.reason ? <span className="small"> {t.reason}</span> : null}
              </td>
              <td>{bytes(t.bytes)}</td>
              <td>{t.durationMs} ms</td>
            </tr>
          ))}
          <EmptyRow list={tasks} colSpan={6} empty="No tasks (yet)." />
        </tbody>
      </table>
    </section>
  );
}

/** Create (POST) or edit (PUT: the fields sent replace theirs) a replication policy. */
export function PolicyForm({ initial, onDone }: { initial: ReplicationPolicy | null; onDone: () => void }) {
  const endpoints = useAsync(() => ok<RegistryEndpoint[]>(api.GET('/api/v1/registries')), []);
  const [f, setF] = useState({
    name: initial?.name ?? '',
    description: initial?.description ?? '',
    direction: initial?.direction ?? ('push' as 'push' | 'pull'),
    registry: initial?.registry ?? '',
    repositories: textOf(initial?.repositories),
    tags: textOf(initial?.tags),
    artifactTypes: textOf(initial?.artifactTypes),
    onlySigned: initial?.onlySigned ?? false,
    destNamespace: initial?.destNamespace ?? '',
    flatten: String(initial?.flatten ?? 0),
    trigger: initial?.trigger ?? ('manual' as 'manual' | 'cron' | 'event'),
    cron: initial?.cron ?? '',
    override: initial?.override ?? false,
    deletion: initial?.deletion ?? false,
    concurrency: String(initial?.concurrency ?? 4),
    bandwidth: initial?.bandwidth ? String(initial.bandwidth) : '',
    enabled: initial?.enabled ?? true,
  });
  const set = <K extends keyof typeof f>(key: K, value: (typeof f)[K]) => setF((old) => ({ ...old, [key]: value }));
  const action = useAction();
  const title = initial ? `Edit replication policy ${initial.name}` : 'New replication policy';
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const fields = {
      description: f.description,
      direction: f.direction,
      registry: f.registry,
      repositories: listOf(f.repositories),
      tags: listOf(f.tags),
      artifactTypes: listOf(f.artifactTypes),
      onlySigned: f.onlySigned,
      destNamespace: f.destNamespace.trim() || null,
      flatten: Number(f.flatten),
      trigger: f.trigger,
      cron: f.trigger === 'cron' ? f.cron.trim() || null : null,
      override: f.override,
      deletion: f.deletion,
      concurrency: Number(f.concurrency),
      bandwidth: f.bandwidth.trim() ? Number(f.bandwidth) : null,
      enabled: f.enabled,
    };
    const done = await action.run(() =>
      initial
        ? ok(api.PUT('/api/v1/replication/policies/{name}', { params: { path: { name: initial.name } }, body: fields }))
        : ok(api.POST('/api/v1/replication/policies', { body: { name: f.name, ...fields } })),
    );
    if (done !== undefined) onDone();
  };
  const check = (key: 'onlySigned' | 'override' | 'deletion' | 'enabled', text: string) => (
    <label className="check">
      <input type="checkbox" checked={f[key]} onChange={(e) => set(key, e.target.checked)} /> {text}
    </label>
  );
  return (
    <form className="panel form-grid" onSubmit={submit} aria-label={title}>
      <h3 className="form-actions">{title}</h3>
      {initial ? null : (
        <label>
          Name
          <input required value={f.name} onChange={(e) => set('name', e.target.value)} pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}" />
        </label>
      )}
      <label>
        Description
        <input value={f.description} onChange={(e) => set('description', e.target.value)} />
      </label>
      <label>
        Direction
        <select value={f.direction} onChange={(e) => set('direction', e.target.value as 'push' | 'pull')}>
          <option value="push">push (this Berth → endpoint)</option>
          <option value="pull">pull (endpoint → this Berth)</option>
        </select>
      </label>
      <label>
        Registry endpoint
        <select required value={f.registry} onChange={(e) => set('registry', e.target.value)}>
          <option value="">(choose)</option>
          {(endpoints.data ?? []).map((r) => (
            <option key={r.name}>{r.name}</option>
          ))}
          {f.registry && !(endpoints.data ?? []).some((r) => r.name === f.registry) ? <option>{f.registry}</option> : null}
        </select>
      </label>
      <label>
        Repositories (globs, empty: all)
        <input value={f.repositories} onChange={(e) => set('repositories', e.target.value)} placeholder="team/**" />
      </label>
      <label>
        Tags (globs, empty: all)
        <input value={f.tags} onChange={(e) => set('tags', e.target.value)} placeholder="v*" />
      </label>
      <label>
        Artifact types (empty: any)
        <input value={f.artifactTypes} onChange={(e) => set('artifactTypes', e.target.value)} />
      </label>
      <label>
        Destination namespace (empty: same name)
        <input value={f.destNamespace} onChange={(e) => set('destNamespace', e.target.value)} />
      </label>
      <label>
        Flatten (components dropped, -1: keep the last)
        <input type="number" min={-1} max={16} value={f.flatten} onChange={(e) => set('flatten', e.target.value)} />
      </label>
      <label>
        Trigger
        <select value={f.trigger} onChange={(e) => set('trigger', e.target.value as typeof f.trigger)}>
          <option value="manual">manual</option>
          <option value="cron">cron</option>
          <option value="event">event (on push)</option>
        </select>
      </label>
      {f.trigger === 'cron' ? (
        <label>
          Cron
          <input required value={f.cron} onChange={(e) => set('cron', e.target.value)} placeholder="0 3 * * *" />
        </label>
      ) : null}
      <label>
        Concurrency (blobs in flight)
        <input type="number" min={1} max={32} value={f.concurrency} onChange={(e) => set('concurrency', e.target.value)} />
      </label>
      <label>
        Bandwidth (bytes/s, empty: unlimited)
        <input type="number" min={1024} value={f.bandwidth} onChange={(e) => set('bandwidth', e.target.value)} />
      </label>
      {check('onlySigned', 'Only signed artifacts')}
      {check('override', 'Override destination tags')}
      {check('deletion', 'Delete tags gone at the source')}
      {check('enabled', 'Enabled')}
      <div className="form-actions">
        <button type="submit" className="primary" disabled={action.busy}>
          {initial ? 'Save policy' : 'Create policy'}
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

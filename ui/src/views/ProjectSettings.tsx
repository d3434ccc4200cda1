import { useState, type FormEvent } from 'react';
import { api, ok } from '../api/client';
import type { ImmutableRule, Member, ProjectDetail, Quota, RetentionPolicy, RetentionRun, Robot } from '../api/types';
import { Badge, EmptyRow, ErrorBox, Tabs, Time, UsageBar, useAsync } from '../components';
import { bytes } from '../format';
import { Link, href, navigate, useTitle } from '../router';
import { can, useSession } from '../session';
import { Policies, ProxyCache } from './ProjectPolicies';
import { useAction } from './forms';
import { Webhooks } from './Webhooks';
import { ObjectTable } from './generic';

const TABS: [string, string][] = [
  ['general', 'General'],
  ['members', 'Members'],
  ['robots', 'Robot accounts'],
  ['quota', 'Quota'],
  ['immutable', 'Immutable tags'],
  ['retention', 'Retention'],
  ['webhooks', 'Webhooks'],
  ['policies', 'Signature & vulnerability policy'],
  ['proxy', 'Proxy cache'],
];

export function ProjectSettings({ project, tab }: { project: string; tab: string }) {
  useTitle(`${project} · settings`);
  const ctx = useSession();
  const { info } = ctx;
  const tabs = TABS.filter(([id]) => id !== 'proxy' || info?.features.proxyCache !== false);
  return (
    <section aria-labelledby="settings-title">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/">Projects</Link> / <Link to={href.project(project)}>{project}</Link> / <span>settings</span>
      </nav>
      <h1 id="settings-title">{project} settings</h1>
      <Tabs label="Project settings" tabs={tabs} current={tab} hrefOf={(t) => href.settings(project, t)} />
      <div className="tab-panel">
        {tab === 'general' ? <General project={project} manage={can(ctx, project, 'manage')} /> : null}
        {tab === 'members' ? <Members project={project} /> : null}
        {tab === 'robots' ? <Robots project={project} /> : null}
        {tab === 'quota' ? <QuotaTab project={project} /> : null}
        {tab === 'immutable' ? <Immutable project={project} /> : null}
        {tab === 'retention' ? <Retention project={project} /> : null}
        {tab === 'webhooks' ? <Webhooks project={project} manage={can(ctx, project, 'manage')} /> : null}
        {tab === 'policies' ? <Policies project={project} manage={can(ctx, project, 'manage')} /> : null}
        {tab === 'proxy' ? <ProxyCache project={project} admin={ctx.session.admin} /> : null}
      </div>
    </section>
  );
}

/** Visibility and deletion of the project (project-admin; the API refuses others anyway). */
function General({ project, manage }: { project: string; manage: boolean }) {
  const detail = useAsync(() => ok<ProjectDetail>(api.GET('/api/v1/projects/{project}', { params: { path: { project } } })), [project]);
  const [error, setError] = useState<Error>();
  const setVisibility = async (isPublic: boolean) => {
    try {
      await ok(api.PATCH('/api/v1/projects/{project}', { params: { path: { project } }, body: { public: isPublic } }));
      setError(undefined);
      detail.reload();
    } catch (e) {
      setError(e as Error);
    }
  };
  const remove = async () => {
    if (
      !window.confirm(
        `Delete project ${project} with its members and robot accounts? Its repositories stay, visible to administrators only.`,
      )
    )
      return;
    try {
      await ok(api.DELETE('/api/v1/projects/{project}', { params: { path: { project } } }));
      navigate('/');
    } catch (e) {
      setError(e as Error);
    }
  };
  const isPublic = detail.data?.public;
  return (
    <>
      <h2>General</h2>
      <ErrorBox error={detail.error ?? error} />
      <p>
        Visibility: {isPublic === undefined ? '…' : isPublic ? <Badge tone="info">public</Badge> : <Badge tone="muted">private</Badge>}{' '}
        <span className="muted">{isPublic === undefined ? '' : isPublic ? 'anyone may pull, signed in or not' : 'only members pull'}</span>
      </p>
      {manage ? (
        <div className="inline-form">
          <button type="button" onClick={() => void setVisibility(!isPublic)} disabled={isPublic === undefined}>
            {isPublic ? 'Make private' : 'Make public'}
          </button>
          <button type="button" className="danger" onClick={() => void remove()}>
            Delete project
          </button>
        </div>
      ) : null}
    </>
  );
}

const ROLES = ['project-admin', 'maintainer', 'developer', 'guest', 'limited-guest'] as const;

function Members({ project }: { project: string }) {
  const members = useAsync(() => ok<Member[]>(api.GET('/api/v1/projects/{project}/members', { params: { path: { project } } })), [project]);
  const [username, setUsername] = useState('');
  const [role, setRole] = useState<(typeof ROLES)[number]>('developer');
  const action = useAction();
  const act = async (p: Promise<{ response: Response; error?: unknown }>) => {
    await action.run(() => ok(p));
    members.reload();
  };
  const add = (event: FormEvent) => {
    event.preventDefault();
    void act(api.PUT('/api/v1/projects/{project}/members/{username}', { params: { path: { project, username } }, body: { role } }));
  };
  return (
    <>
      <h2>Members</h2>
      <ErrorBox error={members.error ?? action.error} />
      <ObjectTable
        caption="Members"
        rows={(members.data ?? []) as never[]}
        columns={['username', 'role']}
        actions={(m) => (
          <button
            type="button"
            className="danger small"
            onClick={() =>
              act(
                api.DELETE('/api/v1/projects/{project}/members/{username}', {
                  params: { path: { project, username: String(m.username) } },
                }),
              )
            }
          >
            Remove
          </button>
        )}
      />
      <form className="inline-form" onSubmit={add} aria-label="Add a member">
        <label htmlFor="member-name">User</label>
        <input id="member-name" required value={username} onChange={(e) => setUsername(e.target.value)} />
        <label htmlFor="member-role">Role</label>
        <select id="member-role" value={role} onChange={(e) => setRole(e.target.value as typeof role)}>
          {ROLES.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
        <button type="submit" className="primary">
          Add or change
        </button>
      </form>
    </>
  );
}

/** A project's robot accounts, or (project null) the system robots, whose grants name their project. */
export function Robots({ project }: { project: string | null }) {
  const robots = useAsync(
    () =>
      ok<Robot[]>(
        project === null ? api.GET('/api/v1/robots') : api.GET('/api/v1/projects/{project}/robots', { params: { path: { project } } }),
      ),
    [project],
  );
  const [grantProject, setGrantProject] = useState('');
  const [name, setName] = useState('');
  const [actions, setActions] = useState<string[]>(['pull', 'push']);
  const [expiresIn, setExpiresIn] = useState('');
  const [created, setCreated] = useState<Robot | null>(null);
  const [error, setError] = useState<Error>();
  const create = async (event: FormEvent) => {
    event.preventDefault();
    try {
      const body = {
        name,
        permissions: [{ project: project ?? grantProject, repository: '*', actions: actions as ('pull' | 'push' | 'delete')[] }],
        ...(expiresIn ? { expiresIn } : {}),
      };
      const robot = await ok<Robot>(
        project === null
          ? api.POST('/api/v1/robots', { body })
          : api.POST('/api/v1/projects/{project}/robots', { params: { path: { project } }, body }),
      );
      setCreated(robot);
      setName('');
      setError(undefined);
      robots.reload();
    } catch (e) {
      setError(e as Error);
    }
  };
  const revoke = async (robot: string) => {
    if (!window.confirm(`Revoke ${robot}? Clients using its secret stop working.`)) return;
    try {
      await ok(
        project === null
          ? api.DELETE('/api/v1/robots/{robot}', { params: { path: { robot } } })
          : api.DELETE('/api/v1/projects/{project}/robots/{robot}', { params: { path: { project, robot } } }),
      );
      robots.reload();
    } catch (e) {
      setError(e as Error);
    }
  };
  const toggle = (action: string) => setActions((a) => (a.includes(action) ? a.filter((x) => x !== action) : [...a, action]));
  return (
    <>
      <h2>{project === null ? 'System robot accounts' : 'Robot accounts'}</h2>
      <ErrorBox error={robots.error ?? error} />
      {created?.secret ? (
        <div className="secret" role="status">
          <p>
            <strong>{created.name}</strong> created. Its secret is shown only now: copy it.
          </p>
          <label htmlFor="robot-secret">Secret</label>
          <input id="robot-secret" readOnly value={created.secret} onFocus={(e) => e.target.select()} />
          <button type="button" onClick={() => void navigator.clipboard?.writeText(created.secret!)}>
            Copy secret
          </button>
          <button type="button" onClick={() => setCreated(null)}>
            Done
          </button>
        </div>
      ) : null}
      <table className="grid compact">
        <caption className="visually-hidden">Robot accounts</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Permissions</th>
            <th scope="col">Expires</th>
            <th scope="col">Created</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {(robots.data ?? []).map((r) => (
            <tr key={r.name}>
              <td>
                <code>{r.name}</code>
              </td>
              <td>
                {r.permissions.map((p) => `${project === null ? `${p.project}/` : ''}${p.repository}: ${p.actions.join(', ')}`).join('; ')}
              </td>
              <td>{r.expiresAt ? <Time at={r.expiresAt} /> : 'never'}</td>
              <td>
                <Time at={r.createdAt} />
              </td>
              <td>
                <button type="button" className="danger small" onClick={() => revoke(r.name)} aria-label={`Revoke ${r.name}`}>
                  Revoke
                </button>
              </td>
            </tr>
          ))}
          <EmptyRow list={robots} colSpan={5} empty="No robot accounts." />
        </tbody>
      </table>
      <form className="inline-form" onSubmit={create} aria-label="New robot account">
        <label htmlFor="robot-name">Name</label>
        <input id="robot-name" required value={name} onChange={(e) => setName(e.target.value)} pattern="[a-z0-9][a-z0-9._-]*" />
        {project === null ? (
          <>
            <label htmlFor="robot-project">Project</label>
            <input id="robot-project" required value={grantProject} onChange={(e) => setGrantProject(e.target.value)} />
          </>
        ) : null}
        <fieldset>
          <legend>Permissions</legend>
          {['pull', 'push', 'delete'].map((a) => (
            <label key={a}>
              <input type="checkbox" checked={actions.includes(a)} onChange={() => toggle(a)} /> {a}
            </label>
          ))}
        </fieldset>
        <label htmlFor="robot-expiry">Expires in</label>
        <input
          id="robot-expiry"
          placeholder="e.g. 30d (empty: never)"
          value={expiresIn}
          onChange={(e) => setExpiresIn(e.target.value)}
          pattern="\d+[smhd]"
          size={14}
        />
        <button type="submit" className="primary">
          Create robot
        </button>
      </form>
    </>
  );
}

function QuotaTab({ project }: { project: string }) {
  const { session } = useSession();
  const quota = useAsync(() => ok<Quota>(api.GET('/api/v1/projects/{project}/quota', { params: { path: { project } } })), [project]);
  const [limit, setLimit] = useState('');
  const [error, setError] = useState<Error>();
  const [saved, setSaved] = useState(false);
  const save = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    try {
      const value = limit.trim() === '' ? null : /^\d+$/.test(limit.trim()) ? Number(limit.trim()) : limit.trim();
      await ok(api.PUT('/api/v1/projects/{project}/quota', { params: { path: { project } }, body: { limit: value } }));
      setError(undefined);
      setSaved(true);
      quota.reload();
    } catch (e) {
      setError(e as Error);
    }
  };
  const q = quota.data;
  return (
    <>
      <h2>Storage quota</h2>
      <ErrorBox error={quota.error ?? error} />
      {q ? (
        <p>
          Using <strong>{bytes(q.used)}</strong>{' '}
          {q.limit !== null ? (
            <>
              of <strong>{bytes(q.limit)}</strong>
            </>
          ) : (
            '(no limit)'
          )}{' '}
          <UsageBar used={q.used} limit={q.limit} label="storage used of the quota" />
        </p>
      ) : null}
      {session.admin ? (
        <form className="inline-form" onSubmit={save} aria-label="Set the quota">
          <label htmlFor="quota-limit">Limit</label>
          <input
            id="quota-limit"
            placeholder="e.g. 10GiB, 500MB; empty: unlimited"
            value={limit}
            onChange={(e) => setLimit(e.target.value)}
            size={30}
          />
          <button type="submit" className="primary">
            Set quota
          </button>
          {saved ? <span role="status">Quota saved.</span> : null}
        </form>
      ) : (
        <p className="muted">Only a system administrator sets quotas.</p>
      )}
    </>
  );
}

function Immutable({ project }: { project: string }) {
  const rules = useAsync(
    () => ok<ImmutableRule[]>(api.GET('/api/v1/projects/{project}/immutable-rules', { params: { path: { project } } })),
    [project],
  );
  const [repository, setRepository] = useState('**');
  const [tag, setTag] = useState('');
  const action = useAction();
  const act = async (p: Promise<{ response: Response; error?: unknown }>) => {
    await action.run(() => ok(p));
    rules.reload();
  };
  const add = (event: FormEvent) => {
    event.preventDefault();
    void act(
      api.POST('/api/v1/projects/{project}/immutable-rules', {
        params: { path: { project } },
        body: { repository: { pattern: repository, decoration: 'matches' }, tag: { pattern: tag, decoration: 'matches' } },
      }),
    );
  };
  return (
    <>
      <h2>Immutable tag rules</h2>
      <ErrorBox error={rules.error ?? action.error} />
      <ObjectTable
        caption="Immutable rules"
        rows={(rules.data ?? []) as never[]}
        columns={['id', 'repository', 'tag', 'disabled']}
        actions={(r) => (
          <button
            type="button"
            className="danger small"
            onClick={() =>
              act(api.DELETE('/api/v1/projects/{project}/immutable-rules/{id}', { params: { path: { project, id: String(r.id) } } }))
            }
          >
            Delete
          </button>
        )}
      />
      <form className="inline-form" onSubmit={add} aria-label="New immutable rule">
        <label htmlFor="imm-repo">Repositories</label>
        <input id="imm-repo" value={repository} onChange={(e) => setRepository(e.target.value)} />
        <label htmlFor="imm-tag">Tags</label>
        <input id="imm-tag" required placeholder="e.g. v*" value={tag} onChange={(e) => setTag(e.target.value)} />
        <button type="submit" className="primary">
          Add rule
        </button>
      </form>
    </>
  );
}

const TEMPLATES = ['latestPushedK', 'latestPulledN', 'nDaysSinceLastPush', 'nDaysSinceLastPull', 'always'] as const;

export function Retention({ project }: { project: string }) {
  const policy = useAsync(
    () => ok<RetentionPolicy>(api.GET('/api/v1/projects/{project}/retention', { params: { path: { project } } })).catch(() => null),
    [project],
  );
  const runs = useAsync(
    () => ok<RetentionRun[]>(api.GET('/api/v1/projects/{project}/retention/runs', { params: { path: { project } } })),
    [project],
  );
  const [template, setTemplate] = useState<(typeof TEMPLATES)[number]>('latestPushedK');
  const [value, setValue] = useState('10');
  const [tags, setTags] = useState('**');
  const [schedule, setSchedule] = useState('');
  const [error, setError] = useState<Error>();
  const [preview, setPreview] = useState<RetentionRun | null>(null);
  const [busy, setBusy] = useState(false);
  const rule = () => ({
    template,
    ...(template.startsWith('latest') ? { count: Number(value) } : template.startsWith('nDays') ? { days: Number(value) } : {}),
    tags: { decoration: 'matches' as const, pattern: tags },
  });

  const save = async (event: FormEvent) => {
    event.preventDefault();
    try {
      await ok(
        api.PUT('/api/v1/projects/{project}/retention', {
          params: { path: { project } },
          body: { rules: [rule()], schedule: schedule || null } as never,
        }),
      );
      setError(undefined);
      policy.reload();
    } catch (e) {
      setError(e as Error);
    }
  };

  /** A dry run of the saved policy: what a real run would remove, nothing removed. */
  const dryRun = async () => {
    setBusy(true);
    setPreview(null);
    try {
      const started = await ok<{ id: number }>(
        api.POST('/api/v1/projects/{project}/retention/runs', { params: { path: { project } }, body: { dryRun: true } }),
      );
      for (let i = 0; i < 120; i++) {
        const run = await ok<RetentionRun>(
          api.GET('/api/v1/projects/{project}/retention/runs/{id}', { params: { path: { project, id: String(started.id) } } }),
        );
        if (run.status !== 'running') {
          setPreview(run);
          break;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      runs.reload();
      setError(undefined);
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <h2>Retention</h2>
      <ErrorBox error={error} />
      {policy.data ? (
        <div className="panel">
          <p>
            Current policy:{' '}
            {policy.data.rules.map((r, i) => (
              <code key={i}>
                {r.template} {r.count ?? r.days ?? ''} tags {r.tags?.pattern ?? '**'}
              </code>
            ))}
            {policy.data.schedule ? (
              <>
                {' '}
                · schedule <code>{policy.data.schedule}</code>
              </>
            ) : (
              ' · on demand only'
            )}
          </p>
          <button type="button" onClick={dryRun} disabled={busy}>
            {busy ? 'Dry run…' : 'Dry run (preview)'}
          </button>
        </div>
      ) : policy.loading ? null : (
        <p className="muted">No retention policy yet.</p>
      )}
      <form className="inline-form" onSubmit={save} aria-label="Retention policy">
        <label htmlFor="ret-template">Keep</label>
        <select id="ret-template" value={template} onChange={(e) => setTemplate(e.target.value as typeof template)}>
          {TEMPLATES.map((t) => (
            <option key={t}>{t}</option>
          ))}
        </select>
        <label htmlFor="ret-value">Count or days</label>
        <input id="ret-value" type="number" min={0} value={value} onChange={(e) => setValue(e.target.value)} size={6} />
        <label htmlFor="ret-tags">Tags</label>
        <input id="ret-tags" value={tags} onChange={(e) => setTags(e.target.value)} size={10} />
        <label htmlFor="ret-schedule">Schedule (cron)</label>
        <input id="ret-schedule" placeholder="empty: on demand" value={schedule} onChange={(e) => setSchedule(e.target.value)} size={12} />
        <button type="submit" className="primary">
          Save policy
        </button>
      </form>
      {preview ? <RunReport run={preview} /> : null}
      <h3>Runs</h3>
      <ObjectTable
        caption="Retention runs"
        rows={(runs.data ?? []) as never[]}
        columns={['id', 'dryRun', 'status', 'startedAt', 'summary']}
      />
    </>
  );
}

function RunReport({ run }: { run: RetentionRun }) {
  const repos = run.report?.repositories ?? [];
  return (
    <section className="panel" aria-labelledby="preview-title">
      <h3 id="preview-title">
        Dry run #{run.id}: {run.status}
      </h3>
      {run.summary && 'error' in run.summary ? <p className="error">{String(run.summary.error)}</p> : null}
      <table className="grid compact preview">
        <caption className="visually-hidden">What the policy would keep and remove</caption>
        <thead>
          <tr>
            <th scope="col">Repository</th>
            <th scope="col">Tag</th>
            <th scope="col">Outcome</th>
            <th scope="col">Why</th>
          </tr>
        </thead>
        <tbody>
          {repos.flatMap((r) => [
            ...r.removed.map((t) => (
              <tr key={`${r.repository}:${t.tag}:rm`}>
                <td>{r.repository}</td>
                <td>{t.tag}</td>
                <td>
                  <Badge tone="bad">would remove</Badge>
                </td>
                <td />
              </tr>
            )),
            ...r.refused.map((t) => (
              <tr key={`${r.repository}:${t.tag}:ref`}>
                <td>{r.repository}</td>
                <td>{t.tag}</td>
                <td>
                  <Badge tone="warn">refused</Badge>
                </td>
                <td>{t.reason}</td>
              </tr>
            )),
            ...r.kept.map((t) => (
              <tr key={`${r.repository}:${t.tag}:kept`}>
                <td>{r.repository}</td>
                <td>{t.tag}</td>
                <td>
                  <Badge tone="ok">keep</Badge>
                </td>
                <td>{t.reasons.join('; ')}</td>
              </tr>
            )),
          ])}
          {repos.length === 0 ? (
            <tr>
              <td colSpan={4} className="muted">
                Nothing matched.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
    </section>
  );
}

import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { RegistryEndpoint, ReplicationPolicy, WebhookPolicy } from '../api/types';
import { fakeApi, json, renderSignedIn } from '../test-utils';
import { Policies, ProxyCache } from './ProjectPolicies';
import { Registries } from './Registries';
import { Replication } from './Replication';
import { Webhooks } from './Webhooks';

const NOW = new Date().toISOString();
const refuse = (status: number, code: string, message: string) => json({ errors: [{ code, message }] }, status);

describe('Webhook form', () => {
  it(
    'creates, edits (blank secret kept), disables and deletes a webhook; shows the API error next to the form',
    { timeout: 30_000 },
    async () => {
      const hooks: WebhookPolicy[] = [];
      const calls = fakeApi({
        'GET /api/v1/projects/team/webhooks': () => hooks,
        'POST /api/v1/projects/team/webhooks': (c) => {
          const b = c.body as WebhookPolicy & { secret: string | null };
          if (hooks.some((h) => h.name === b.name)) return refuse(409, 'CONFLICT', `webhook ${b.name} already exists`);
          hooks.push({
            ...b,
            id: hooks.length + 1,
            project: 'team',
            hasSecret: b.secret != null,
            hasAuthHeader: false,
            createdAt: NOW,
            updatedAt: NOW,
          });
          return hooks.at(-1);
        },
        'PATCH /api/v1/projects/team/webhooks/1': (c) => Object.assign(hooks[0]!, c.body),
        'DELETE /api/v1/projects/team/webhooks/1': () => void hooks.splice(0, 1),
        'GET /api/v1/projects/team/webhooks/1/deliveries': () => [{ id: 9, status: 'delivered', attempts: 1 }],
      });
      window.confirm = () => true;
      renderSignedIn(<Webhooks project="team" manage />, { projects: [{ name: 'team', role: 'project-admin' }] });
      fireEvent.click(await screen.findByRole('button', { name: 'New webhook' }));
      const form = screen.getByRole('form', { name: 'New webhook' });
      fireEvent.change(within(form).getByLabelText('Name'), { target: { value: 'ci' } });
      fireEvent.change(within(form).getByLabelText('URL'), { target: { value: 'https://hooks.example/x' } });
      fireEvent.change(within(form).getByLabelText('Format'), { target: { value: 'cloudevents' } });
      fireEvent.change(within(form).getByLabelText(/^Tags/), { target: { value: 'v*, release-*' } });
      fireEvent.click(within(form).getByLabelText('artifact.pushed'));
      fireEvent.change(within(form).getByLabelText(/^Secret/), { target: { value: 'k' } });
      fireEvent.click(within(form).getByRole('button', { name: 'Create webhook' }));
      const row = (await screen.findByText('ci')).closest('tr')!;
      expect(calls.find((c) => c.method === 'POST')!.body).toEqual({
        name: 'ci',
        url: 'https://hooks.example/x',
        format: 'cloudevents',
        events: ['artifact.pushed'],
        repositories: [],
        tags: ['v*', 'release-*'],
        enabled: true,
        secret: 'k',
      });
      expect(calls.find((c) => c.method === 'POST')!.headers.get('x-csrf-token')).toBe('csrf-test');

      // Edit: the secret field is blank and sent only when typed.
      fireEvent.click(within(row).getByRole('button', { name: 'Edit ci' }));
      const edit = screen.getByRole('form', { name: 'Edit webhook ci' });
      expect((within(edit).getByLabelText(/^Secret/) as HTMLInputElement).value).toBe('');
      fireEvent.change(within(edit).getByLabelText('URL'), { target: { value: 'https://hooks.example/y' } });
      fireEvent.click(within(edit).getByRole('button', { name: 'Save webhook' }));
      await waitFor(() => expect(screen.queryByRole('form', { name: 'Edit webhook ci' })).toBeNull());
      const patch = calls.find((c) => c.method === 'PATCH')!.body as Record<string, unknown>;
      expect(patch.url).toBe('https://hooks.example/y');
      expect('secret' in patch).toBe(false);

      fireEvent.click(within(row).getByRole('button', { name: 'Disable ci' }));
      expect(await within(row).findByText('disabled')).toBeTruthy();
      expect(calls.filter((c) => c.method === 'PATCH').at(-1)!.body).toEqual({ enabled: false });

      fireEvent.click(within(row).getByRole('button', { name: 'Deliveries of ci' }));
      expect(await screen.findByRole('region', { name: 'Deliveries of webhook ci' })).toBeTruthy();

      // The same name again: the server's message next to the form.
      fireEvent.click(screen.getByRole('button', { name: 'New webhook' }));
      const again = screen.getByRole('form', { name: 'New webhook' });
      fireEvent.change(within(again).getByLabelText('Name'), { target: { value: 'ci' } });
      fireEvent.change(within(again).getByLabelText('URL'), { target: { value: 'https://hooks.example/z' } });
      fireEvent.click(within(again).getByRole('button', { name: 'Create webhook' }));
      expect((await within(again).findByRole('alert')).textContent).toBe('webhook ci already exists');
      fireEvent.click(within(again).getByRole('button', { name: 'Cancel' }));

      fireEvent.click(within(row).getByRole('button', { name: 'Delete ci' }));
      expect(await screen.findByText('No webhooks.')).toBeTruthy();
    },
  );

  it('offers no create, edit or delete without project-admin', async () => {
    fakeApi({
      'GET /api/v1/projects/team/webhooks': () => [
        {
          id: 1,
          project: 'team',
          name: 'ci',
          url: 'https://h',
          format: 'harbor',
          events: [],
          repositories: [],
          tags: [],
          enabled: true,
          hasSecret: false,
          hasAuthHeader: false,
          createdAt: NOW,
          updatedAt: NOW,
        },
      ],
    });
    renderSignedIn(<Webhooks project="team" manage={false} />, { projects: [{ name: 'team', role: 'developer' }] });
    expect(await screen.findByText('ci')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'New webhook' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Edit ci' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Delete ci' })).toBeNull();
  });
});

describe('Registry endpoint form', () => {
  it(
    'creates an endpoint, tests the connection (ok and failed), edits it keeping the credential, deletes it',
    { timeout: 30_000 },
    async () => {
      const endpoints: RegistryEndpoint[] = [];
      let reachable = true;
      const calls = fakeApi({
        'GET /api/v1/registries': () => endpoints,
        'POST /api/v1/registries': (c) => {
          const b = c.body as RegistryEndpoint & { credential: string | null };
          endpoints.push({ ...b, id: 1, hasCredential: b.credential != null, hasCaBundle: false, createdAt: NOW, updatedAt: NOW });
          return endpoints[0];
        },
        'PATCH /api/v1/registries/hub': (c) => Object.assign(endpoints[0]!, c.body),
        'POST /api/v1/registries/hub/ping': () =>
          reachable
            ? { ok: true, status: 200, auth: 'bearer', apiVersion: 'registry/2.0', latencyMs: 12 }
            : { ok: false, status: 401, auth: 'bearer', apiVersion: null, latencyMs: 8, reason: 'the credential was refused' },
        'DELETE /api/v1/registries/hub': () => refuse(409, 'CONFLICT', 'registry endpoint hub is used by replication policy mirror'),
      });
      window.confirm = () => true;
      renderSignedIn(<Registries />, { admin: true });
      fireEvent.click(await screen.findByRole('button', { name: 'New registry endpoint' }));
      const form = screen.getByRole('form', { name: 'New registry endpoint' });
      fireEvent.change(within(form).getByLabelText('Name'), { target: { value: 'hub' } });
      fireEvent.change(within(form).getByLabelText('URL'), { target: { value: 'https://registry.example' } });
      fireEvent.change(within(form).getByLabelText('Kind'), { target: { value: 'docker-hub' } });
      fireEvent.change(within(form).getByLabelText(/^Username/), { target: { value: 'bot' } });
      fireEvent.change(within(form).getByLabelText(/^Password or token/), { target: { value: 'tok' } });
      fireEvent.click(within(form).getByLabelText(/insecure/));
      fireEvent.click(within(form).getByRole('button', { name: 'Create endpoint' }));
      const row = (await screen.findByText('bot (secret set)')).closest('tr')!;
      expect(calls.find((c) => c.method === 'POST')!.body).toEqual({
        name: 'hub',
        url: 'https://registry.example',
        kind: 'docker-hub',
        description: '',
        insecure: true,
        username: 'bot',
        credential: 'tok',
      });
      expect(within(row).getByText('not verified')).toBeTruthy();

      fireEvent.click(within(row).getByRole('button', { name: 'Test connection to hub' }));
      expect(await within(row).findByText('reachable')).toBeTruthy();
      expect(within(row).getByText(/200, auth bearer, 12 ms/)).toBeTruthy();
      reachable = false;
      fireEvent.click(within(row).getByRole('button', { name: 'Test connection to hub' }));
      expect(await within(row).findByText('the credential was refused', { exact: false })).toBeTruthy();

      // The credential is never shown back; blank keeps it (not sent).
      fireEvent.click(within(row).getByRole('button', { name: 'Edit hub' }));
      const edit = screen.getByRole('form', { name: 'Edit registry endpoint hub' });
      expect((within(edit).getByLabelText(/^Password or token/) as HTMLInputElement).value).toBe('');
      fireEvent.change(within(edit).getByLabelText('Description'), { target: { value: 'Docker Hub' } });
      fireEvent.click(within(edit).getByRole('button', { name: 'Save endpoint' }));
      await waitFor(() => expect(screen.queryByRole('form', { name: 'Edit registry endpoint hub' })).toBeNull());
      const patch = calls.find((c) => c.method === 'PATCH')!.body as Record<string, unknown>;
      expect(patch.description).toBe('Docker Hub');
      expect('credential' in patch).toBe(false);

      // A refused delete: the server's reason is shown.
      fireEvent.click(within(row).getByRole('button', { name: 'Delete hub' }));
      expect((await screen.findByRole('alert')).textContent).toBe('registry endpoint hub is used by replication policy mirror');
    },
  );
});

describe('Replication form', () => {
  it('creates a policy, runs it now and shows an execution with its per-artifact tasks', { timeout: 30_000 }, async () => {
    const policies: ReplicationPolicy[] = [];
    const calls = fakeApi({
      'GET /api/v1/replication/policies': () => policies,
      'GET /api/v1/registries': () => [
        {
          id: 1,
          name: 'hub',
          url: 'https://r',
          kind: 'other',
          description: '',
          username: null,
          hasCredential: false,
          insecure: false,
          hasCaBundle: false,
          createdAt: NOW,
          updatedAt: NOW,
        },
      ],
      'POST /api/v1/replication/policies': (c) => {
        policies.push({ ...(c.body as ReplicationPolicy), id: 1 });
        return policies[0];
      },
      'PUT /api/v1/replication/policies/mirror': (c) => Object.assign(policies[0]!, c.body),
      'POST /api/v1/replication/policies/mirror/run': () => ({ id: 42, policy: 'mirror', trigger: 'manual', status: 'pending' }),
      'GET /api/v1/replication/executions': (c) =>
        c.query.get('policy') === 'mirror' || !c.query.get('policy')
          ? [
              {
                id: 42,
                policy: 'mirror',
                trigger: 'manual',
                status: 'partial',
                createdAt: Date.now(),
                startedAt: Date.now(),
                finishedAt: Date.now(),
                copied: 1,
                skipped: 0,
                failed: 1,
                deleted: 0,
                bytes: 2048,
                error: null,
              },
            ]
          : [],
      'GET /api/v1/replication/executions/42/tasks': () => [
        {
          id: 1,
          sourceRepository: 'team/app',
          destRepository: 'mirror/app',
          reference: 'v1',
          digest: null,
          status: 'copied',
          reason: null,
          bytes: 2048,
          durationMs: 30,
          finishedAt: Date.now(),
        },
        {
          id: 2,
          sourceRepository: 'team/app',
          destRepository: 'mirror/app',
          reference: 'v2',
          digest: null,
          status: 'failed',
          reason: 'upstream answered 500',
          bytes: 0,
          durationMs: 5,
          finishedAt: Date.now(),
        },
      ],
    });
    renderSignedIn(<Replication />, { admin: true });
    fireEvent.click(await screen.findByRole('button', { name: 'New replication policy' }));
    const form = screen.getByRole('form', { name: 'New replication policy' });
    fireEvent.change(within(form).getByLabelText('Name'), { target: { value: 'mirror' } });
    await within(form).findByRole('option', { name: 'hub' });
    fireEvent.change(within(form).getByLabelText('Registry endpoint'), { target: { value: 'hub' } });
    fireEvent.change(within(form).getByLabelText(/^Repositories/), { target: { value: 'team/**' } });
    fireEvent.change(within(form).getByLabelText('Trigger'), { target: { value: 'cron' } });
    fireEvent.change(within(form).getByLabelText('Cron'), { target: { value: '0 3 * * *' } });
    fireEvent.click(within(form).getByLabelText('Only signed artifacts'));
    fireEvent.click(within(form).getByRole('button', { name: 'Create policy' }));
    const row = (await screen.findByText('hub', { selector: 'td' })).closest('tr')!;
    expect(calls.find((c) => c.method === 'POST')!.body).toMatchObject({
      name: 'mirror',
      registry: 'hub',
      direction: 'push',
      repositories: ['team/**'],
      tags: [],
      trigger: 'cron',
      cron: '0 3 * * *',
      onlySigned: true,
      concurrency: 4,
      bandwidth: null,
      destNamespace: null,
    });

    fireEvent.click(within(row).getByRole('button', { name: 'Edit mirror' }));
    const edit = screen.getByRole('form', { name: 'Edit replication policy mirror' });
    expect((within(edit).getByLabelText('Cron') as HTMLInputElement).value).toBe('0 3 * * *');
    fireEvent.change(within(edit).getByLabelText(/^Concurrency/), { target: { value: '8' } });
    fireEvent.click(within(edit).getByRole('button', { name: 'Save policy' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'PUT' && (c.body as ReplicationPolicy).concurrency === 8)).toBe(true));

    fireEvent.click(within(row).getByRole('button', { name: 'Run now (mirror)' }));
    expect((await screen.findByRole('status')).textContent).toBe('Execution 42 of mirror queued.');
    fireEvent.click(await screen.findByRole('button', { name: 'Tasks of execution 42' }));
    const tasks = await screen.findByRole('region', { name: 'Tasks of execution 42' });
    expect(await within(tasks).findByText('upstream answered 500', { exact: false })).toBeTruthy();
    expect(within(tasks).getByText('copied')).toBeTruthy();
  });
});

describe('Policies and proxy cache', () => {
  it('saves the signature and vulnerability policies from their forms', async () => {
    const calls = fakeApi({
      'GET /api/v1/projects/team/signature-policy': () => ({
        project: 'team',
        mode: 'off',
        inheritIndex: true,
        keys: [{ id: 3, name: 'release', kind: 'public-key', fingerprint: 'SHA256:abc' }],
        updatedBy: null,
        updatedAt: null,
      }),
      'PUT /api/v1/projects/team/signature-policy': (c) => ({
        project: 'team',
        ...(c.body as object),
        keys: [],
        updatedBy: 'alice',
        updatedAt: NOW,
      }),
      'GET /api/v1/projects/team/vulnerability-policy': () => ({
        project: 'team',
        mode: 'off',
        severity: 'critical',
        allowlist: [],
        unscanned: 'allow',
        graceSeconds: 0,
        inheritIndex: true,
      }),
      'PUT /api/v1/projects/team/vulnerability-policy': (c) =>
        (c.body as { allowlist: string[] }).allowlist.includes('bad')
          ? refuse(400, 'INVALID_ARGUMENT', 'allowlist.0: a vulnerability id such as CVE-2024-1234')
          : { project: 'team', ...(c.body as object) },
    });
    renderSignedIn(<Policies project="team" manage />, { projects: [{ name: 'team', role: 'project-admin' }] });
    const signature = await screen.findByRole('form', { name: 'Signature policy' });
    expect(screen.getByText('SHA256:abc')).toBeTruthy();
    fireEvent.change(within(signature).getByLabelText('Mode'), { target: { value: 'enforce' } });
    fireEvent.click(within(signature).getByRole('button', { name: 'Save signature policy' }));
    await waitFor(() => expect(calls.find((c) => c.method === 'PUT')?.body).toEqual({ mode: 'enforce', inheritIndex: true }));

    const vuln = await screen.findByRole('form', { name: 'Vulnerability policy' });
    fireEvent.change(within(vuln).getByLabelText('Mode'), { target: { value: 'audit' } });
    fireEvent.change(within(vuln).getByLabelText('Refuse from severity'), { target: { value: 'high' } });
    fireEvent.change(within(vuln).getByLabelText('Unscanned artifacts'), { target: { value: 'grace' } });
    fireEvent.change(within(vuln).getByLabelText('Grace (seconds)'), { target: { value: '3600' } });
    fireEvent.change(within(vuln).getByLabelText(/^Allowlist/), { target: { value: 'bad' } });
    fireEvent.click(within(vuln).getByRole('button', { name: 'Save vulnerability policy' }));
    expect((await within(vuln).findByRole('alert')).textContent).toBe('allowlist.0: a vulnerability id such as CVE-2024-1234');
    fireEvent.change(within(vuln).getByLabelText(/^Allowlist/), { target: { value: 'CVE-2024-1, GHSA-abcd-efgh-ijkl' } });
    fireEvent.click(within(vuln).getByRole('button', { name: 'Save vulnerability policy' }));
    await waitFor(() =>
      expect(calls.filter((c) => c.path.endsWith('vulnerability-policy') && c.method === 'PUT').at(-1)!.body).toEqual({
        mode: 'audit',
        severity: 'high',
        allowlist: ['CVE-2024-1', 'GHSA-abcd-efgh-ijkl'],
        unscanned: 'grace',
        graceSeconds: 3600,
        inheritIndex: true,
      }),
    );
  });

  it('shows the policies read-only to a member who may not change them', async () => {
    fakeApi({
      'GET /api/v1/projects/team/signature-policy': () => ({
        project: 'team',
        mode: 'audit',
        inheritIndex: true,
        keys: [],
        updatedBy: null,
        updatedAt: null,
      }),
      'GET /api/v1/projects/team/vulnerability-policy': () => ({
        project: 'team',
        mode: 'off',
        severity: 'critical',
        allowlist: [],
        unscanned: 'allow',
        graceSeconds: 0,
        inheritIndex: true,
      }),
    });
    renderSignedIn(<Policies project="team" manage={false} />, { projects: [{ name: 'team', role: 'developer' }] });
    const signature = await screen.findByRole('form', { name: 'Signature policy' });
    expect((within(signature).getByLabelText('Mode') as HTMLSelectElement).disabled).toBe(true);
    expect(screen.queryByRole('button', { name: /Save/ })).toBeNull();
    expect(screen.queryByRole('form', { name: 'Trust a key' })).toBeNull();
  });

  it('binds a project to an endpoint, edits the binding and unbinds it', async () => {
    let binding: Record<string, unknown> | null = null;
    const calls = fakeApi({
      'GET /api/v1/projects/hub/proxy-cache': () => binding ?? refuse(404, 'NOT_FOUND', 'project hub is not a proxy cache'),
      'GET /api/v1/registries': () => [
        {
          id: 1,
          name: 'dockerhub',
          url: 'https://registry-1.docker.io',
          kind: 'docker-hub',
          description: '',
          username: null,
          hasCredential: false,
          insecure: false,
          hasCaBundle: false,
          createdAt: NOW,
          updatedAt: NOW,
        },
      ],
      'PUT /api/v1/projects/hub/proxy-cache': (c) => {
        const b = c.body as { endpoint: string; namespace: string | null; tagTtlSeconds?: number; keepDeletedTags: boolean | null };
        binding = {
          project: 'hub',
          endpoint: b.endpoint,
          namespace: b.namespace,
          tagTtlSeconds: b.tagTtlSeconds ?? 300,
          keepDeletedTags: b.keepDeletedTags,
        };
        return binding;
      },
      'DELETE /api/v1/projects/hub/proxy-cache': () => {
        binding = null;
      },
    });
    window.confirm = () => true;
    renderSignedIn(<ProxyCache project="hub" admin />, { admin: true });
    expect(await screen.findByText('hub is a normal project, not a pull-through cache.')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Bind to a registry endpoint' }));
    const form = screen.getByRole('form', { name: 'Proxy-cache binding' });
    await within(form).findByRole('option', { name: 'dockerhub' });
    fireEvent.change(within(form).getByLabelText('Registry endpoint'), { target: { value: 'dockerhub' } });
    fireEvent.change(within(form).getByLabelText(/^Upstream namespace/), { target: { value: 'library' } });
    fireEvent.click(within(form).getByRole('button', { name: 'Save binding' }));
    expect(await screen.findByText('every 300 s')).toBeTruthy();
    expect(calls.find((c) => c.method === 'PUT')!.body).toEqual({ endpoint: 'dockerhub', namespace: 'library', keepDeletedTags: null });

    fireEvent.click(screen.getByRole('button', { name: 'Edit binding' }));
    const edit = screen.getByRole('form', { name: 'Proxy-cache binding' });
    fireEvent.change(within(edit).getByLabelText(/^Tag revalidation/), { target: { value: '60' } });
    fireEvent.change(within(edit).getByLabelText('Tags deleted upstream'), { target: { value: 'keep' } });
    fireEvent.click(within(edit).getByRole('button', { name: 'Save binding' }));
    expect(await screen.findByText('every 60 s')).toBeTruthy();
    expect(screen.getByText('kept')).toBeTruthy();

    fireEvent.click(screen.getByRole('button', { name: 'Unbind' }));
    expect(await screen.findByText('hub is a normal project, not a pull-through cache.')).toBeTruthy();
    expect(calls.some((c) => c.method === 'DELETE')).toBe(true);
  });

  it('offers no binding form to a project admin who is not a system admin', async () => {
    fakeApi({ 'GET /api/v1/projects/hub/proxy-cache': () => refuse(404, 'NOT_FOUND', 'not a cache') });
    renderSignedIn(<ProxyCache project="hub" admin={false} />, { projects: [{ name: 'hub', role: 'project-admin' }] });
    expect(await screen.findByText(/Only a system administrator/)).toBeTruthy();
    expect(screen.queryByRole('button', { name: /Bind/ })).toBeNull();
  });
});

import { fireEvent, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { fakeApi, renderSignedIn } from '../test-utils';
import { ProjectSettings, Retention, Robots } from './ProjectSettings';

describe('Project settings', () => {
  it('creates a robot and shows its secret once', async () => {
    const robots: unknown[] = [];
    const calls = fakeApi({
      'GET /api/v1/projects/team/robots': () => robots,
      'POST /api/v1/projects/team/robots': (c) => {
        const body = c.body as { name: string };
        const robot = {
          name: `robot$team+${body.name}`,
          project: 'team',
          description: null,
          permissions: [{ project: 'team', repository: '*', actions: ['pull', 'push'] }],
          expiresAt: null,
          createdBy: 'alice',
          createdAt: new Date().toISOString(),
        };
        robots.push(robot);
        return { ...robot, secret: 's3cr3t-value' };
      },
    });
    renderSignedIn(<Robots project="team" />, { projects: [{ name: 'team', role: 'project-admin' }] });
    fireEvent.change(await screen.findByLabelText('Name'), { target: { value: 'ci' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create robot' }));
    expect(((await screen.findByLabelText('Secret')) as HTMLInputElement).value).toBe('s3cr3t-value');
    expect(await screen.findByText('robot$team+ci', { selector: 'code' })).toBeTruthy();
    expect((calls.find((c) => c.method === 'POST')!.body as { permissions: { actions: string[] }[] }).permissions[0]!.actions).toEqual([
      'pull',
      'push',
    ]);
    fireEvent.click(screen.getByRole('button', { name: 'Done' }));
    expect(screen.queryByLabelText('Secret')).toBeNull();
  });

  it('creates a system robot (project null): POST /api/v1/robots with the project its grant names', async () => {
    const calls = fakeApi({
      'GET /api/v1/robots': () => [],
      'POST /api/v1/robots': (c) => ({
        name: `robot$${(c.body as { name: string }).name}`,
        project: null,
        description: null,
        permissions: [{ project: 'team', repository: '*', actions: ['pull'] }],
        expiresAt: null,
        createdBy: 'alice',
        createdAt: new Date().toISOString(),
        secret: 'sys-secret',
      }),
    });
    renderSignedIn(<Robots project={null} />, { admin: true });
    expect(await screen.findByRole('heading', { name: 'System robot accounts' })).toBeTruthy();
    fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'mirror' } });
    fireEvent.change(screen.getByLabelText('Project'), { target: { value: 'team' } });
    fireEvent.click(screen.getByLabelText('push'));
    fireEvent.click(screen.getByRole('button', { name: 'Create robot' }));
    expect(((await screen.findByLabelText('Secret')) as HTMLInputElement).value).toBe('sys-secret');
    const post = calls.find((c) => c.method === 'POST')!;
    expect(post.path).toBe('/api/v1/robots');
    expect((post.body as { permissions: unknown }).permissions).toEqual([{ project: 'team', repository: '*', actions: ['pull'] }]);
  });

  it('General: a project admin makes the project public and deletes it; a developer is offered neither', async () => {
    let isPublic = false;
    const calls = fakeApi({
      'GET /api/v1/projects/team': () => ({
        name: 'team',
        public: isPublic,
        createdBy: 'alice',
        createdAt: new Date().toISOString(),
        members: [],
        robots: [],
      }),
      'PATCH /api/v1/projects/team': (c) => void (isPublic = (c.body as { public: boolean }).public),
      'DELETE /api/v1/projects/team': () => undefined,
    });
    vi.spyOn(window, 'confirm').mockReturnValue(true);
    const view = renderSignedIn(<ProjectSettings project="team" tab="general" />, { projects: [{ name: 'team', role: 'project-admin' }] });
    // The button exists (disabled) before the project has loaded: wait for its visibility first.
    await screen.findByText('private', { exact: true });
    fireEvent.click(screen.getByRole('button', { name: 'Make public' }));
    await vi.waitFor(() => expect(calls.find((c) => c.method === 'PATCH')?.body).toEqual({ public: true }));
    fireEvent.click(screen.getByRole('button', { name: 'Delete project' }));
    await vi.waitFor(() => expect(calls.some((c) => c.method === 'DELETE' && c.path === '/api/v1/projects/team')).toBe(true));
    view.unmount();
    renderSignedIn(<ProjectSettings project="team" tab="general" />, { projects: [{ name: 'team', role: 'developer' }] });
    expect(await screen.findByText('anyone may pull', { exact: false })).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Delete project' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Make private' })).toBeNull();
  });

  it('previews a retention dry run: what would be removed and what is kept, and why', async () => {
    let polls = 0;
    fakeApi({
      'GET /api/v1/projects/team/retention': () => ({
        project: 'team',
        rules: [{ template: 'latestPushedK', count: 1, tags: { decoration: 'matches', pattern: '**' } }],
        schedule: null,
        nextRunAt: null,
      }),
      'GET /api/v1/projects/team/retention/runs': () => [],
      'POST /api/v1/projects/team/retention/runs': (c) => ({
        id: 7,
        project: 'team',
        dryRun: (c.body as { dryRun: boolean }).dryRun,
        status: 'running',
      }),
      'GET /api/v1/projects/team/retention/runs/7': () =>
        ++polls < 2
          ? { id: 7, status: 'running' }
          : {
              id: 7,
              project: 'team',
              dryRun: true,
              status: 'ok',
              startedAt: new Date().toISOString(),
              finishedAt: new Date().toISOString(),
              summary: { tagsRemoved: 1 },
              report: {
                totals: {},
                repositories: [
                  {
                    repository: 'team/app',
                    kept: [{ tag: 'v2', digest: 'sha256:2', reasons: ['rule 1: latestPushedK 1'] }],
                    removed: [{ tag: 'v1', digest: 'sha256:1' }],
                    refused: [],
                  },
                ],
              },
            },
    });
    renderSignedIn(<Retention project="team" />, { projects: [{ name: 'team', role: 'project-admin' }] });
    fireEvent.click(await screen.findByRole('button', { name: 'Dry run (preview)' }));
    expect(await screen.findByText('would remove', {}, { timeout: 3000 })).toBeTruthy();
    expect(screen.getByText('rule 1: latestPushedK 1')).toBeTruthy();
    expect(polls).toBe(2);
  });
});

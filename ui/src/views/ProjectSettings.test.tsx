import { fireEvent, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { fakeApi, renderSignedIn } from '../test-utils';
import { Retention, Robots } from './ProjectSettings';

describe('Project settings', () => {
  it('creates a robot and shows its secret once', async () => {
    const robots: unknown[] = [];
    const calls = fakeApi({
      'GET /api/v1/projects/team/robots': () => robots,
      'POST /api/v1/projects/team/robots': (c) => {
        const body = c.body as { name: string };
        const robot = { name: `robot$team+${body.name}`, project: 'team', description: null, permissions: [{ project: 'team', repository: '*', actions: ['pull', 'push'] }], expiresAt: null, createdBy: 'alice', createdAt: new Date().toISOString() };
        robots.push(robot);
        return { ...robot, secret: 's3cr3t-value' };
      },
    });
    renderSignedIn(<Robots project="team" />, { projects: [{ name: 'team', role: 'project-admin' }] });
    fireEvent.change(await screen.findByLabelText('Name'), { target: { value: 'ci' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create robot' }));
    expect(((await screen.findByLabelText('Secret')) as HTMLInputElement).value).toBe('s3cr3t-value');
    expect(await screen.findByText('robot$team+ci', { selector: 'code' })).toBeTruthy();
    expect((calls.find((c) => c.method === 'POST')!.body as { permissions: { actions: string[] }[] }).permissions[0]!.actions).toEqual(['pull', 'push']);
    fireEvent.click(screen.getByRole('button', { name: 'Done' }));
    expect(screen.queryByLabelText('Secret')).toBeNull();
  });

  it('previews a retention dry run: what would be removed and what is kept, and why', async () => {
    let polls = 0;
    fakeApi({
      'GET /api/v1/projects/team/retention': () => ({ project: 'team', rules: [{ template: 'latestPushedK', count: 1, tags: { decoration: 'matches', pattern: '**' } }], schedule: null, nextRunAt: null }),
      'GET /api/v1/projects/team/retention/runs': () => [],
      'POST /api/v1/projects/team/retention/runs': (c) => ({ id: 7, project: 'team', dryRun: (c.body as { dryRun: boolean }).dryRun, status: 'running' }),
      'GET /api/v1/projects/team/retention/runs/7': () =>
        ++polls < 2
          ? { id: 7, status: 'running' }
          : { id: 7, project: 'team', dryRun: true, status: 'ok', startedAt: new Date().toISOString(), finishedAt: new Date().toISOString(), summary: { tagsRemoved: 1 }, report: { totals: {}, repositories: [{ repository: 'team/app', kept: [{ tag: 'v2', digest: 'sha256:2', reasons: ['rule 1: latestPushedK 1'] }], removed: [{ tag: 'v1', digest: 'sha256:1' }], refused: [] }] } },
    });
    renderSignedIn(<Retention project="team" />, { projects: [{ name: 'team', role: 'project-admin' }] });
    fireEvent.click(await screen.findByRole('button', { name: 'Dry run (preview)' }));
    expect(await screen.findByText('would remove', {}, { timeout: 3000 })).toBeTruthy();
    expect(screen.getByText('rule 1: latestPushedK 1')).toBeTruthy();
    expect(polls).toBe(2);
  });
});

import { fireEvent, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { fakeApi, renderSignedIn } from '../test-utils';
import { Repositories } from './Repositories';

const row = (name: string, pulls: number) => ({ name, tagCount: 3, pushedAt: new Date().toISOString(), pulls, size: 1 << 20 });

describe('Repositories view', () => {
  it('sorts on the server, searches, and offers delete only to maintainers and up', async () => {
    const calls = fakeApi({
      'GET /api/v1/projects/team/repositories': () => ({ items: [row('team/a', 5), row('team/b', 9)], next: null, total: 2 }),
    });
    const view = renderSignedIn(<Repositories project="team" />, { projects: [{ name: 'team', role: 'developer' }] });
    expect(await screen.findByRole('link', { name: 'team/a' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: /Delete repository/ })).toBeNull();
    expect(screen.queryByRole('link', { name: 'Project settings' })).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: /Pulls/ }));
    await waitFor(() => expect(calls.at(-1)!.query.get('sort')).toBe('pulls'));
    expect(calls.at(-1)!.query.get('order')).toBe('desc');
    expect(screen.getByRole('columnheader', { name: /Pulls/ }).getAttribute('aria-sort')).toBe('descending');
    fireEvent.click(screen.getByRole('button', { name: /Pulls/ }));
    await waitFor(() => expect(calls.at(-1)!.query.get('order')).toBe('asc'));
    fireEvent.change(screen.getByLabelText('Search repositories'), { target: { value: 'b' } });
    await waitFor(() => expect(calls.at(-1)!.query.get('q')).toBe('b'));
    view.unmount();

    renderSignedIn(<Repositories project="team" />, { projects: [{ name: 'team', role: 'project-admin' }] });
    expect(await screen.findByRole('button', { name: 'Delete repository team/a' })).toBeTruthy();
    expect(screen.getByRole('link', { name: 'Project settings' })).toBeTruthy();
  });
});

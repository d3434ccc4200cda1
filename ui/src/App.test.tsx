import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { App } from './App';
import { INFO, fakeApi, json } from './test-utils';

const SESSION = { username: 'alice', admin: false, csrfToken: 'tok-1', expiresAt: new Date(Date.now() + 3600_000).toISOString() };

describe('App session', () => {
  it('signs in with a password, shows the projects, and goes back to sign-in when the session expires', async () => {
    let signedIn = false;
    const calls = fakeApi({
      'GET /api/v1/session': () => (signedIn ? SESSION : json({ errors: [{ code: 'UNAUTHORIZED', message: 'no session' }] }, 401)),
      'POST /api/v1/session': (c) => {
        const { username, password } = c.body as { username: string; password: string };
        if (password !== 'secret') return json({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] }, 401);
        signedIn = username === 'alice';
        return SESSION;
      },
      'GET /api/v1/oidc/providers': () => [{ name: 'corp', displayName: 'Corp SSO' }],
      'GET /api/v1/system/info': () => INFO,
      'GET /api/v1/me': () => ({ username: 'alice', admin: false, projects: [{ name: 'team', role: 'developer' }] }),
      'GET /api/v1/projects': () =>
        signedIn
          ? [{ name: 'team', public: false, createdBy: 'alice', createdAt: new Date().toISOString() }]
          : json({ errors: [{ code: 'UNAUTHORIZED', message: 'expired' }] }, 401),
      'GET /api/v1/quotas': () => [{ project: 'team', used: 512, limit: 1024, percent: 50 }],
      'GET /api/v1/projects/team/repositories': () =>
        signedIn ? { items: [], next: null, total: 7 } : json({ errors: [{ code: 'UNAUTHORIZED', message: 'expired' }] }, 401),
    });
    render(<App />);
    fireEvent.change(await screen.findByLabelText('Username'), { target: { value: 'alice' } });
    expect((await screen.findByRole('link', { name: 'Sign in with Corp SSO' })).getAttribute('href')).toBe('/api/v1/oidc/corp/login?ui=1');
    fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'wrong' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByText('invalid username or password')).toBeTruthy();
    fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'secret' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('link', { name: 'team' })).toBeTruthy();
    expect(await screen.findByText('7')).toBeTruthy();
    expect(screen.getByRole('meter', { name: /team storage used/ })).toBeTruthy();
    // Not an admin: no administration link.
    expect(screen.queryByRole('link', { name: 'Administration' })).toBeNull();

    // The server ends the session: the next call answers 401 and the UI asks to sign in again.
    signedIn = false;
    fireEvent.click(screen.getByRole('link', { name: 'team' }));
    await waitFor(() => expect(screen.getByText('Your session expired. Sign in again.')).toBeTruthy());
    expect(calls.some((c) => c.method === 'POST' && c.path === '/api/v1/session')).toBe(true);
  });
});

import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { TagRow } from '../api/types';
import { fakeApi, renderSignedIn } from '../test-utils';
import { Tags } from './Tags';

function tag(name: string, extra: Partial<TagRow> = {}): TagRow {
  return {
    tag: name,
    digest: `sha256:${'a'.repeat(63)}${name.length}`,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: null,
    kind: 'image',
    size: 2048,
    platforms: [{ os: 'linux', architecture: 'amd64' }],
    pushedAt: new Date(Date.now() - 3600_000).toISOString(),
    pulledAt: null,
    signatures: { count: 0, verified: 0 },
    scan: null,
    sbom: false,
    ...extra,
  };
}

const PAGE1 = {
  items: [
    tag('v1', { signatures: { count: 1, verified: 1 }, sbom: true }),
    tag('v2', { kind: 'helm' }),
    tag('v3', { scan: { status: 'complete', critical: 2, high: 0, medium: 1, low: 0, unknown: 0 } }),
  ],
  next: 'cursor-1',
  total: 5,
};
const PAGE2 = { items: [tag('v4'), tag('v5', { kind: 'model' })], next: null, total: 5 };

describe('Tags view', () => {
  it('shows kinds and badges, pages with the server cursor, copies the pull command', async () => {
    const calls = fakeApi({ 'GET /api/v1/repositories/team%2Fapp/tags': (c) => (c.query.get('last') === 'cursor-1' ? PAGE2 : PAGE1) });
    const writeText = vi.fn(async () => {});
    vi.stubGlobal('navigator', { clipboard: { writeText } });
    renderSignedIn(<Tags repository="team/app" />, { projects: [{ name: 'team', role: 'guest' }] });
    const v1 = (await screen.findByRole('link', { name: 'v1' })).closest('tr')!;
    expect(within(v1).getByText('✓ signed')).toBeTruthy();
    expect(within(v1).getByText('SBOM')).toBeTruthy();
    expect(within(screen.getByRole('link', { name: 'v2' }).closest('tr')!).getByText('Helm chart')).toBeTruthy();
    expect(within(screen.getByRole('link', { name: 'v3' }).closest('tr')!).getByText('2 critical')).toBeTruthy();
    // The repository name is URL-encoded as one path segment; page size and sort go to the server.
    expect(calls[0]!.path).toBe('/api/v1/repositories/team/app/tags');
    expect(calls[0]!.query.get('n')).toBe('50');
    expect(calls[0]!.query.get('sort')).toBe('pushed');
    // A guest may not delete: no checkboxes, no batch delete.
    expect(screen.queryByRole('button', { name: /Delete selected/ })).toBeNull();
    expect(screen.queryByRole('checkbox')).toBeNull();

    fireEvent.click(within(v1).getByRole('button', { name: 'Copy pull command of v1' }));
    await waitFor(() => expect(writeText).toHaveBeenCalledWith('podman pull registry.example:5000/team/app:v1'));

    fireEvent.click(screen.getByRole('button', { name: /Next/ }));
    expect(await screen.findByRole('link', { name: 'v5' })).toBeTruthy();
    expect(screen.getByText('AI model')).toBeTruthy();
    expect(calls.at(-1)!.query.get('last')).toBe('cursor-1');
    expect((screen.getByRole('button', { name: /Next/ }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('batch-deletes the selected tags with the CSRF header and reports per-tag failures', async () => {
    let deleted: string[] = [];
    const calls = fakeApi({
      'GET /api/v1/repositories/team%2Fapp/tags': () => ({ ...PAGE1, items: PAGE1.items.filter((t) => !deleted.includes(t.tag)) }),
      'POST /api/v1/repositories/team%2Fapp/tags/delete': (c) => {
        deleted = ['v1'];
        expect((c.body as { tags: string[] }).tags).toEqual(['v1', 'v2']);
        return { deleted: ['v1'], failed: [{ tag: 'v2', code: 'DENIED', message: 'tag v2 is immutable' }] };
      },
    });
    vi.spyOn(window, 'confirm').mockReturnValue(true);
    renderSignedIn(<Tags repository="team/app" />, { projects: [{ name: 'team', role: 'maintainer' }] });
    fireEvent.click(await screen.findByRole('checkbox', { name: 'Select tag v1' }));
    fireEvent.click(screen.getByRole('checkbox', { name: 'Select tag v2' }));
    fireEvent.click(screen.getByRole('button', { name: 'Delete selected (2)' }));
    expect(await screen.findByText(/tag v2 is immutable/)).toBeTruthy();
    expect(screen.getByText(/Deleted 1 tag/)).toBeTruthy();
    const post = calls.find((c) => c.method === 'POST')!;
    expect(post.headers.get('x-csrf-token')).toBe('csrf-test');
    await waitFor(() => expect(screen.queryByRole('link', { name: 'v1' })).toBeNull());
    // The failed tag stays selected for another try.
    expect((screen.getByRole('checkbox', { name: 'Select tag v2' }) as HTMLInputElement).checked).toBe(true);
  });
});

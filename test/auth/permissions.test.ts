import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PERMISSIONS, PUBLIC_PERMISSIONS, ROLE_PERMISSIONS, ROLES, projectOf, renderPermissionTables } from '../../src/auth/permissions.js';
import { globMatch } from '../../src/auth/rules.js';
import { parseScopes } from '../../src/auth/scopes.js';
import { ROOT } from '../helpers/server.js';

describe('the permission table', () => {
  it('docs/security.md prints exactly the table in src/auth/permissions.ts (`berth auth permissions`)', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/security.md'), 'utf8');
    assert.ok(doc.includes(renderPermissionTables()), 'regenerate the table in docs/security.md with `berth auth permissions`');
  });

  it('roles are strictly ordered: each holds everything the next one down holds', () => {
    for (let i = 1; i < ROLES.length; i++) {
      const higher = new Set(ROLE_PERMISSIONS[ROLES[i - 1]!]);
      for (const p of ROLE_PERMISSIONS[ROLES[i]!]) assert.ok(higher.has(p), `${ROLES[i - 1]} lacks ${p} that ${ROLES[i]} has`);
    }
    assert.deepEqual([...ROLE_PERMISSIONS['project-admin']].sort(), [...PERMISSIONS].sort());
  });

  it('public projects never grant writes', () => {
    for (const p of ['push', 'delete', 'manage-project'] as const) assert.ok(!PUBLIC_PERMISSIONS.includes(p));
  });

  it('a repository belongs to the project named by its first path component', () => {
    assert.equal(projectOf('team-a/app/api'), 'team-a');
    assert.equal(projectOf('alpine'), 'alpine');
  });

  it('robot repository patterns: * matches any run of characters, everything else is literal', () => {
    assert.ok(globMatch('*', 'team/a/b'));
    assert.ok(globMatch('team/app*', 'team/app-api'));
    assert.ok(!globMatch('team/app', 'team/app2'));
    assert.ok(!globMatch('team/a.b', 'team/aXb'));
  });

  it('parses token scopes, including several per parameter and resource classes, dropping malformed ones', () => {
    assert.deepEqual(
      parseScopes(['repository:a/b:pull,push', 'registry:catalog:* repository(plugin):c:pull', 'nonsense', 'repository::pull']),
      [
        { type: 'repository', name: 'a/b', actions: ['pull', 'push'] },
        { type: 'registry', name: 'catalog', actions: ['*'] },
        { type: 'repository', name: 'c', actions: ['pull'] },
      ],
    );
  });
});

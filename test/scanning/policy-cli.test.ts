import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deploy, type Backend, type Deployment } from '../contracts/deployment.js';
import { metadataEnvOf, runBerth } from '../helpers/cli.js';

const backend = (process.env.BERTH_TEST_METADATA ?? 'sqlite') as Backend;

/**
 * `npx berth vuln-policy <project>` on the server's configuration: shows the policy, changes
 * only the options given (the allowlist grows with --allow, empties with --clear-allowlist),
 * refuses bad values and unknown projects with exit code 2 and a message.
 */
describe(`npx berth vuln-policy (${backend})`, () => {
  let deployment: Deployment;
  before(async () => {
    deployment = await deploy(backend);
    await deployment.stores.auth.createProject({ name: 'team', public: false, createdBy: 'test' });
  });
  after(async () => deployment?.destroy());

  const berth = (args: string[]) => runBerth(args, metadataEnvOf(deployment.config.data.dir, deployment.config.metadata));
  const show = async () => {
    const run = await berth(['vuln-policy', 'team']);
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as {
      mode: string;
      severity: string;
      allowlist: string[];
      unscanned: string;
      graceSeconds: number;
      inheritIndex: boolean;
      updatedBy: string | null;
    };
  };

  it('shows the defaults, sets what is given and keeps the rest', async () => {
    assert.deepEqual((({ mode, severity, allowlist, unscanned }) => ({ mode, severity, allowlist, unscanned }))(await show()), {
      mode: 'off',
      severity: 'critical',
      allowlist: [],
      unscanned: 'allow',
    });
    const set = await berth([
      'vuln-policy',
      'team',
      '--mode',
      'enforce',
      '--severity',
      'high',
      '--allow',
      'CVE-2099-0001,GHSA-aaaa-bbbb-0001',
      '--unscanned',
      'grace',
      '--grace',
      '24h',
    ]);
    assert.equal(set.code, 0, set.stderr);
    const after1 = await show();
    assert.deepEqual(
      [after1.mode, after1.severity, after1.allowlist, after1.unscanned, after1.graceSeconds, after1.inheritIndex],
      ['enforce', 'high', ['CVE-2099-0001', 'GHSA-AAAA-BBBB-0001'], 'grace', 86_400, true],
    );
    assert.match(after1.updatedBy ?? '', /^cli:/);
    assert.equal((await berth(['vuln-policy', 'team', '--allow', 'CVE-2099-0002', '--no-inherit-index'])).code, 0);
    const after2 = await show();
    assert.deepEqual(
      [after2.mode, after2.allowlist, after2.inheritIndex, after2.graceSeconds],
      ['enforce', ['CVE-2099-0001', 'CVE-2099-0002', 'GHSA-AAAA-BBBB-0001'], false, 86_400],
    );
    assert.equal((await berth(['vuln-policy', 'team', '--clear-allowlist', '--mode', 'audit'])).code, 0);
    assert.deepEqual([(await show()).allowlist, (await show()).mode], [[], 'audit']);
  });

  it('refuses bad values and unknown projects, changing nothing', async () => {
    for (const [args, message] of [
      [['--mode', 'strict'], /mode/],
      [['--severity', 'severe'], /severity/],
      [['--unscanned', 'grace', '--grace', 'soon'], /--grace must be a duration/],
      [['--allow', 'not an id'], /allowlist/],
    ] as const) {
      const run = await berth(['vuln-policy', 'team', ...args]);
      assert.notEqual(run.code, 0, args.join(' '));
      assert.match(run.stderr, message);
    }
    assert.equal((await show()).mode, 'audit');
    const unknown = await berth(['vuln-policy', 'nosuch', '--mode', 'enforce']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /project nosuch does not exist/);
  });
});

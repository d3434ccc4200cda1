import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Finding } from '../../src/scanning/match.js';
import { judgeScan, vulnerabilityPolicy, VulnVerdictCache, type VulnViolation } from '../../src/scanning/policy.js';
import type { ScanRecord, VulnPolicy, VulnPolicySnapshot, VulnPolicyStore } from '../../src/scanning/ports.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const IMAGE = 'application/vnd.oci.image.manifest.v1+json';

function finding(id: string, severity: Finding['severity'], aliases: string[] = []): Finding {
  return {
    id,
    aliases,
    summary: null,
    package: 'p',
    ecosystem: 'npm',
    installed: '1',
    fixed: null,
    severity,
    cvss: null,
    severitySource: 'database',
    links: [],
  };
}

function scan(findings: Finding[], status: ScanRecord['status'] = 'complete'): ScanRecord {
  return {
    digest: DIGEST,
    status,
    scannedAt: 0,
    source: 'request',
    databaseImport: 1,
    packages: 1,
    summary: {},
    findings,
    error: status === 'failed' ? 'no package list' : null,
  };
}

/**
 * The vulnerability verdict cache and judgement on their own (in-memory fakes counting every
 * read): the counts in the message, both sides of the threshold, the allowlist on ids and
 * aliases, an allowed pull served without reads, refusals re-judged when the counters move,
 * the grace for unscanned artifacts measured with an injected clock.
 */
describe('vulnerability policy: judgement and verdict cache', () => {
  it('counts findings at or above the threshold, most severe first; the allowlist matches ids and aliases case-insensitively', () => {
    const findings = [
      finding('DSA-1', 'Critical', ['CVE-2099-0001']),
      finding('GHSA-2', 'Critical'),
      finding('GHSA-3', 'High', ['CVE-2099-0003']),
      finding('GHSA-4', 'High'),
      finding('GHSA-5', 'Medium'),
      finding('GHSA-6', 'Low'),
    ];
    assert.deepEqual(judgeScan({ severity: 'high', allowlist: [] }, findings), {
      allowed: false,
      summary: '2 critical, 2 high at or above high',
      allowlisted: [],
    });
    assert.equal(judgeScan({ severity: 'critical', allowlist: [] }, findings).summary, '2 critical at or above critical');
    assert.equal(judgeScan({ severity: 'low', allowlist: [] }, findings).summary, '2 critical, 2 high, 1 medium, 1 low at or above low');
    const listed = judgeScan({ severity: 'high', allowlist: ['cve-2099-0001', 'GHSA-4'] }, findings);
    assert.deepEqual(listed, {
      allowed: false,
      summary: '1 critical, 1 high at or above high; allowlisted: CVE-2099-0001, GHSA-4',
      allowlisted: ['CVE-2099-0001', 'GHSA-4'],
    });
    const clean = judgeScan({ severity: 'critical', allowlist: ['CVE-2099-0001', 'GHSA-2'] }, findings);
    assert.deepEqual([clean.allowed, clean.summary], [true, 'no vulnerabilities at or above critical; allowlisted: CVE-2099-0001, GHSA-2']);
    assert.equal(judgeScan({ severity: 'critical', allowlist: [] }, [finding('X-1', 'High')]).allowed, true, 'one below the threshold');
    assert.equal(judgeScan({ severity: 'high', allowlist: [] }, [finding('X-1', 'High')]).allowed, false, 'at the threshold');
  });

  function world(settings: Partial<VulnPolicy> = {}) {
    const reads = { state: 0, snapshot: 0, scans: 0, pushedAt: 0, parents: 0, exempt: 0 };
    const snapshot: VulnPolicySnapshot = {
      policy: {
        project: 'team',
        mode: 'enforce',
        severity: 'high',
        allowlist: [],
        unscanned: 'deny',
        graceSeconds: 3600,
        inheritIndex: true,
        updatedAt: new Date(),
        updatedBy: null,
        ...settings,
      },
      version: 1,
      scans: 0,
    };
    const scans = new Map<string, ScanRecord>();
    const store: VulnPolicyStore = {
      within: () => ({
        setPolicy: async () => assert.fail(),
        saveScan: async () => assert.fail(),
        scanChanged: async () => void snapshot.scans++,
        contentRemoved: async () => void snapshot.scans++,
      }),
      state: async () => (reads.state++, { version: snapshot.version, scans: snapshot.scans }),
      snapshot: async () => (reads.snapshot++, structuredClone(snapshot)),
      pushedAt: async () => (reads.pushedAt++, 1_000_000),
      parents: async () => (reads.parents++, []),
    };
    const reader = {
      scans: { scanOf: async (d: string) => (reads.scans++, scans.get(d) ?? null) },
      isExempt: async () => (reads.exempt++, false),
    };
    const rescan = (record: ScanRecord) => {
      scans.set(DIGEST, record);
      snapshot.scans++;
    };
    return { reads, snapshot, store, reader, scans, rescan };
  }

  const serve = async (policy: ReturnType<typeof vulnerabilityPolicy>): Promise<void> =>
    policy.hooks['manifest.serve']!({ repository: 'team/app', digest: DIGEST, mediaType: IMAGE, reference: 'v1', actor: 'dev' }, null);

  it('an allowed manifest is judged once: a thousand later pulls read nothing', async () => {
    const w = world();
    w.rescan(scan([finding('GHSA-5', 'Medium')]));
    const policy = vulnerabilityPolicy(w.store, new VulnVerdictCache(w.store, 60_000), w.reader, () => assert.fail('no violation'));
    await serve(policy);
    const afterFirst = { ...w.reads };
    assert.equal(afterFirst.scans, 1);
    for (let i = 0; i < 1000; i++) await serve(policy);
    assert.deepEqual(w.reads, afterFirst);
  });

  it('a refusal names the counts, is recorded once, and is re-judged at the next pull once a rescan moved the counter', async () => {
    const w = world();
    w.rescan(scan([finding('DSA-1', 'Critical', ['CVE-2099-0001']), finding('GHSA-3', 'High')]));
    const violations: VulnViolation[] = [];
    const policy = vulnerabilityPolicy(w.store, new VulnVerdictCache(w.store, 60_000), w.reader, (v) => violations.push(v));
    const expected =
      /manifest team\/app@sha256:a{64} is refused by the vulnerability policy of project team \(mode enforce, severity high\): 1 critical, 1 high at or above high \(policy: vulnerabilities\)$/;
    await assert.rejects(serve(policy), expected);
    await assert.rejects(serve(policy), expected);
    assert.equal(violations.length, 1);
    const scansBefore = w.reads.scans;
    await assert.rejects(serve(policy), expected);
    assert.equal(w.reads.scans, scansBefore, 'counters unchanged: the refusal comes from the cache');
    w.rescan(scan([]));
    await serve(policy);
  });

  it('an allowed verdict follows a rescan elsewhere once the refresh interval passed (counter compared)', async () => {
    const w = world();
    w.rescan(scan([]));
    // 500 ms, not less: the second serve must land inside the interval even on a loaded machine (20 ms failed under load).
    const cache = new VulnVerdictCache(w.store, 500);
    const policy = vulnerabilityPolicy(w.store, cache, w.reader, () => undefined);
    await serve(policy);
    w.rescan(scan([finding('GHSA-9', 'Critical')]));
    await serve(policy);
    await new Promise((resolve) => setTimeout(resolve, 550));
    await assert.rejects(serve(policy), /1 critical at or above high/);
  });

  it('a policy change (version) re-judges a refusal at once, an allowed verdict after the refresh; this replica applies its own at once (forget)', async () => {
    const w = world();
    w.rescan(scan([finding('GHSA-3', 'High')]));
    const cache = new VulnVerdictCache(w.store, 60_000);
    const policy = vulnerabilityPolicy(w.store, cache, w.reader, () => undefined);
    await assert.rejects(serve(policy), /1 high at or above high/);
    w.snapshot.policy!.severity = 'critical';
    w.snapshot.version++;
    await serve(policy);
    w.snapshot.policy!.severity = 'high';
    w.snapshot.version++;
    await serve(policy);
    cache.forget('team');
    await assert.rejects(serve(policy), /1 high at or above high/);
  });

  it('unscanned: deny refuses, allow serves, grace serves until the grace (on the injected clock) ends', async () => {
    const deny = world({ unscanned: 'deny' });
    await assert.rejects(
      serve(vulnerabilityPolicy(deny.store, new VulnVerdictCache(deny.store, 60_000), deny.reader, () => undefined)),
      /: not scanned, and the policy refuses unscanned artifacts/,
    );
    const failed = world({ unscanned: 'deny' });
    failed.scans.set(DIGEST, scan([], 'failed'));
    await assert.rejects(
      serve(vulnerabilityPolicy(failed.store, new VulnVerdictCache(failed.store, 60_000), failed.reader, () => undefined)),
      /its last scan failed \(no package list\)/,
    );
    const allow = world({ unscanned: 'allow' });
    await serve(vulnerabilityPolicy(allow.store, new VulnVerdictCache(allow.store, 60_000), allow.reader, () => assert.fail()));

    const grace = world({ unscanned: 'grace', graceSeconds: 3600 });
    let now = 1_000_000 + 3_599_000;
    const cache = new VulnVerdictCache(grace.store, 60_000, () => now);
    const policy = vulnerabilityPolicy(grace.store, cache, grace.reader, () => undefined);
    await serve(policy);
    const reads = { ...grace.reads };
    await serve(policy);
    assert.deepEqual(grace.reads, reads, 'within the grace: served from the cache');
    now = 1_000_000 + 3_600_000;
    await assert.rejects(serve(policy), /not scanned within the 1h grace after its push at 1970-01-01T00:16:40.000Z/);
    grace.rescan(scan([finding('GHSA-5', 'Medium')]));
    await serve(policy);
  });

  it('mode off and projects without a policy cost one state read per refresh and judge nothing', async () => {
    const w = world({ mode: 'off' });
    w.rescan(scan([finding('DSA-1', 'Critical')]));
    const policy = vulnerabilityPolicy(w.store, new VulnVerdictCache(w.store, 60_000), w.reader, () => assert.fail());
    for (let i = 0; i < 100; i++) await serve(policy);
    assert.deepEqual([w.reads.state, w.reads.scans], [1, 0]);
  });
});

/**
 * `npm run bench -- --signatures-overhead`: what an enforcing signature trust policy costs a
 * pull (issue 16: enforced within 10 % of unenforced). Project `bench` trusts a fresh cosign
 * key on both sides; the image pulled is signed with it (a cosign `sha256-<hex>.sig` tag, as
 * `cosign sign --key` ≤ v2 writes it); side `off` has the policy in mode off, side
 * `signatures-enforced` in mode enforce. The same build, alternating A/B rounds. Per side:
 * manifest GET by tag under load and the server's CPU time per GET. The first GET of a round
 * verifies the signature (crypto); every later one is served from the verdict cache.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { BenchClient, jsonBlob, OCI_MANIFEST, sha256, smallImage, type Blob } from './client.js';
import { measureRequest } from './load.js';
import type { BenchOptions, SetupCommand } from './options.js';
import { median } from './rss.js';
import { prepareBerthBuild, startBerth, tempDir, type BenchServer, type BerthLaunch } from './servers.js';
import { CheckFailed } from './workload.js';

type Side = 'off' | 'signatures-enforced';
export const REPO = 'bench/signed';

/** The `berth` commands that give project `bench` its policy (the variant's state). */
export function signatureSetup(publicPem: string, mode: 'off' | 'enforce'): SetupCommand[] {
  return [
    { args: ['project', 'add', 'bench', '--public'] },
    { args: ['signature', 'trust', 'bench', 'bench-key', '-'], stdin: publicPem },
    { args: ['signature', 'policy', 'bench', '--mode', mode] },
  ];
}

/** Pushes a small image tagged latest and its cosign signature (legacy tag, one simple-signing layer). */
export async function pushSigned(
  client: BenchClient,
  privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'],
  nonce: string,
): Promise<Blob> {
  const image = smallImage(nonce);
  for (const blob of [image.config, image.layer]) await client.uploadBlob(REPO, blob);
  await client.putManifest(REPO, 'latest', image.manifest);
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': `bench/${REPO}` },
        image: { 'docker-manifest-digest': image.manifest.digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
  const layer: Blob = { digest: sha256(payload), size: payload.length, data: payload };
  const config = jsonBlob({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [layer.digest] }, config: {} });
  const signature = sign('sha256', payload, { key: privateKey, dsaEncoding: 'der' }).toString('base64');
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.size, digest: config.digest },
    layers: [
      {
        mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
        size: layer.size,
        digest: layer.digest,
        annotations: { 'dev.cosignproject.cosign/signature': signature },
      },
    ],
  });
  for (const blob of [config, layer]) await client.uploadBlob(REPO, blob);
  await client.putManifest(REPO, `${image.manifest.digest.replace(':', '-')}.sig`, manifest);
  return image.manifest;
}

async function measure(
  launch: BerthLaunch,
  options: BenchOptions,
  privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'],
  round: number,
): Promise<{ perSecond: number; cpuMicros: number }> {
  const server: BenchServer = await startBerth(launch);
  try {
    const client = new BenchClient(server.url);
    const manifest = await pushSigned(client, privateKey, `sig-${round}`);
    // Served (not refused) on both sides: the signature verifies.
    const first = await client.getBytes(`/v2/${REPO}/manifests/latest`, { accept: OCI_MANIFEST });
    if (first.status !== 200) throw new CheckFailed(`the signed manifest answered ${first.status}: ${first.body.toString().slice(0, 300)}`);
    return await measureRequest(server, options, {
      label: 'signed manifest GET by tag',
      path: `/v2/${REPO}/manifests/latest`,
      headers: { accept: OCI_MANIFEST },
      expectBody: manifest.data.toString('utf8'),
    });
  } finally {
    await server.stop();
  }
}

/** Runs the A/B rounds and returns a Markdown report (also logged as it goes). */
export async function runSignaturesOverhead(
  options: BenchOptions,
  log = (line: string) => process.stderr.write(`${line}\n`),
): Promise<string> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const buildDir = options.berthRuntime === 'build' ? await prepareBerthBuild(tempDir('berth-bench-')) : undefined;
  const base: BerthLaunch = { runtime: options.berthRuntime, buildDir, nodeArgs: options.berthNodeArgs };
  const launches: Record<Side, BerthLaunch> = {
    off: { ...base, setup: signatureSetup(publicPem, 'off') },
    'signatures-enforced': { ...base, setup: signatureSetup(publicPem, 'enforce') },
  };
  const results: Record<Side, { perSecond: number; cpuMicros: number }[]> = { off: [], 'signatures-enforced': [] };
  for (let round = 0; round < options.rounds; round++) {
    const order: Side[] = round % 2 === 0 ? ['off', 'signatures-enforced'] : ['signatures-enforced', 'off'];
    for (const side of order) {
      const f = await measure(launches[side], options, privateKey, round);
      results[side].push(f);
      log(`[round ${round + 1}/${options.rounds}] ${side}: ${f.perSecond.toFixed(0)} req/s, ${f.cpuMicros.toFixed(0)} µs CPU/request`);
    }
  }
  const rps = (side: Side) => median(results[side].map((f) => f.perSecond));
  const cpu = (side: Side) => median(results[side].map((f) => f.cpuMicros));
  const row = (side: Side, label: string) =>
    `| ${label} | ${rps(side).toFixed(0)} | ${cpu(side).toFixed(0)} | ${results[side].map((f) => `${f.perSecond.toFixed(0)} / ${f.cpuMicros.toFixed(0)}`).join(', ')} |`;
  return [
    `## Signature policy overhead: signed manifest GET by tag (${options.connections} connections, ${options.durationSeconds} s, ${options.rounds} A/B rounds)`,
    '',
    '| trust policy of project bench | req/s (median) | server CPU µs per request (median) | rounds (req/s / µs) |',
    '|---|---|---|---|',
    row('off', 'mode off (key trusted, nothing checked)'),
    row('signatures-enforced', 'mode enforce (--signatures-overhead side signatures-enforced)'),
    '',
    `Throughput enforced / off: ${((rps('signatures-enforced') / rps('off')) * 100).toFixed(1)} %; CPU per request enforced / off: ${((cpu('signatures-enforced') / cpu('off')) * 100).toFixed(1)} % (target: enforced within 10 % of off).`,
    '',
  ].join('\n');
}

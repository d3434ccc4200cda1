import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { openSync, closeSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RegistryClient, makeImage, sha256, type Image } from '../helpers/registry-client.js';
import { ROOT, startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { fsckInProcess } from './support.js';

/**
 * A full disk while Berth deletes, and while SQLite cannot grow: the data directory (blobs
 * and the SQLite database) is a 64 MiB tmpfs filled to the last byte. A `berth gc` run on the
 * full disk either collects (and so frees space) or fails cleanly, never corrupting what is
 * live; metadata writes answer 507 STORAGE_FULL while reads keep working; after space is freed
 * everything works again and fsck finds no corruption. Mounting needs root (CI runs as root);
 * a failure to mount FAILS the suite.
 */
describe('disk full while GC deletes and while SQLite cannot grow (64 MiB tmpfs)', () => {
  const mountPoint = tempDir('berth-full-gc-');
  let mounted = false;
  let server: BerthProcess | undefined;
  let client: RegistryClient;
  let live: Image;
  const garbage: Image[] = [];
  const fillers: string[] = [];

  /** Fills the disk to the last byte with filler files (removable later). */
  function fillDisk(): void {
    const file = path.join(mountPoint, `filler-${fillers.length}`);
    fillers.push(file);
    const fd = openSync(file, 'w');
    const block = Buffer.alloc(1024 * 1024, 7);
    try {
      for (;;) writeSync(fd, block);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    }
    // The last partial block: smaller writes until not even one byte fits.
    for (let size = 512 * 1024; size >= 1; size = Math.floor(size / 2)) {
      try {
        for (;;) writeSync(fd, block.subarray(0, size));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
    closeSync(fd);
  }

  before(async () => {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mountPoint], { stdio: 'pipe' });
      mounted = true;
    } catch (err) {
      throw new Error(
        `this test needs to mount a tmpfs (run as root; CI does): ${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}`,
        { cause: err },
      );
    }
    server = await startBerthProcess({ BERTH_DATA_DIR: mountPoint, BERTH_GC_ENABLED: 'false' });
    client = new RegistryClient(server.url);
    live = makeImage({ layers: 2, layerSize: 512 * 1024 });
    assert.equal((await client.pushImage('full/live', 'v1', live)).status, 201);
    for (let i = 0; i < 6; i++) {
      const image = makeImage({ layers: 1, layerSize: 2 * 1024 * 1024 });
      garbage.push(image);
      assert.equal((await client.pushImage('full/junk', `t${i}`, image)).status, 201);
      assert.equal((await client.fetch(`/v2/full/junk/manifests/${image.manifest.digest}`, { method: 'DELETE' })).status, 202);
    }
  });

  after(async () => {
    await server?.kill();
    if (mounted) execFileSync('umount', ['-l', mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  async function assertLiveIntact(where: string): Promise<void> {
    const manifest = await client.fetch('/v2/full/live/manifests/v1');
    assert.equal(manifest.status, 200, where);
    assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), live.manifest.data, where);
    for (const layer of live.layers) {
      const res = await client.fetch(`/v2/full/live/blobs/${layer.digest}`);
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), layer.digest, where);
    }
  }

  it('SQLite cannot grow: metadata writes answer 507 STORAGE_FULL, reads keep working, the server stays up', async (t) => {
    fillDisk();
    const statuses: number[] = [];
    // New tags are metadata only: push until SQLite needs a page it cannot get.
    for (let i = 0; i < 400 && !statuses.includes(507); i++) {
      const res = await client.pushManifest('full/live', `tag-${i}-${'x'.repeat(100)}`, live.manifest);
      statuses.push(res.status);
      if (res.status !== 201) {
        const body = (await res.json()) as { errors: { code: string }[] };
        assert.equal(res.status, 507, JSON.stringify(body));
        assert.equal(body.errors[0]!.code, 'STORAGE_FULL');
      }
    }
    t.diagnostic(
      `tag pushes on a full disk: ${statuses.filter((s) => s === 201).length} × 201, then ${statuses.filter((s) => s !== 201).join(' ')}`,
    );
    assert.ok(statuses.includes(507), 'SQLite never ran out of room');
    await assertLiveIntact('reads while SQLite cannot grow');
    assert.equal((await client.fetch('/v2/full/live/tags/list')).status, 200);
    assert.equal((await client.fetch('/v2/_catalog')).status, 200);
    assert.equal(server!.child.exitCode, null);
  });

  it('berth gc on the full disk collects (freeing space) or fails cleanly; live images stay intact; then pushes work again', async (t) => {
    const run = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'gc'], {
        cwd: ROOT,
        env: { ...process.env, BERTH_DATA_DIR: mountPoint, BERTH_GC_GRACEPERIOD: '0s', BERTH_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.once('exit', (code) => resolve({ code, output }));
    });
    t.diagnostic(`berth gc on a full disk: exit ${run.code}; ${run.output.trim().split('\n').slice(-3).join(' | ')}`);
    assert.ok(run.code === 0 || run.code === 1 || run.code === 3, `berth gc crashed: exit ${run.code}\n${run.output}`);
    assert.doesNotMatch(run.output, /SQLITE_CORRUPT|malformed/i);
    if (run.code === 1) {
      // A full disk is an operator's fact, not a crash: the reason and the remedy, no stack trace.
      assert.match(run.output, /the disk or database is full; free some space/);
      assert.doesNotMatch(run.output, /\n\s+at /);
    }
    await assertLiveIntact('after gc on a full disk');
    const during = await fsckInProcess(mountPoint).catch((err: Error) => err);
    if (!(during instanceof Error))
      assert.deepEqual(
        during.report.problems.filter((p) => p.severity === 'corruption'),
        [],
        'fsck during the full disk',
      );

    for (const file of fillers) rmSync(file, { force: true });
    if (run.code !== 0) {
      // Space is back: the collection that could not finish now does.
      const again = execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'gc'], {
        cwd: ROOT,
        env: { ...process.env, BERTH_DATA_DIR: mountPoint, BERTH_GC_GRACEPERIOD: '0s', BERTH_LOG_LEVEL: 'warn' },
      });
      t.diagnostic(`berth gc after freeing space: ${again.toString().trim().split('\n').slice(-1)[0]}`);
    }
    for (const image of garbage) {
      assert.equal(
        (await client.fetch(`/v2/full/junk/blobs/${image.layers[0]!.digest}`, { method: 'HEAD' })).status,
        404,
        'garbage collected',
      );
    }
    assert.equal((await client.pushImage('full/live', 'after', makeImage({ layers: 1, layerSize: 1024 * 1024 }))).status, 201);
    await assertLiveIntact('after freeing space');
    await server!.stop();
    server = undefined;
    const check = await fsckInProcess(mountPoint, { graceMs: 0, verifyContent: true });
    assert.deepEqual(
      check.report.problems.filter((p) => p.severity === 'corruption'),
      [],
    );
  });
});

/**
 * The client of one timed pull in the proxy-cache bench, run as a process of its own
 * (`node --import tsx bench/pull-client.ts <base-url> <repository> <digest>`): pullAndHash, then
 * one line of JSON with its result and the wall time, CPU seconds and run-queue wait it took,
 * measured here from the request to the last byte (module loading not included).
 *
 * Not the bench process itself: its hashing slowed down from round to round (2026-12-03, quiet
 * machine: 1.9 CPU-s for 1 GiB in round 1, 5.3-5.5 in rounds 2 and 3), which made the direct
 * pulls slower and the first-pull ratio look better than it was.
 */
import { readFileSync } from 'node:fs';
import { pullAndHash } from './workloads/blob-stream.js';

/** Seconds this process's main thread spent runnable but waiting for a core (schedstat's second field, ns). */
const runWait = () => Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]) / 1e9;

const [baseUrl, repo, digest] = process.argv.slice(2);
if (!baseUrl || !repo || !digest) {
  process.stderr.write('usage: pull-client.ts <base-url> <repository> <digest>\n');
  process.exit(2);
}
const cpuBefore = process.cpuUsage();
const waitBefore = runWait();
const started = performance.now();
const pulled = await pullAndHash(baseUrl, digest, repo);
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
process.stdout.write(JSON.stringify({ ...pulled, seconds, cpu: (cpu.user + cpu.system) / 1e6, runWait: runWait() - waitBefore }));

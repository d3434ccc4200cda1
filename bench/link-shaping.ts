/**
 * A slower link for one server's replies on loopback, with tc (Linux traffic control), so a
 * bench can put its upstream "across a network" on one machine: an HTB class of the given rate
 * on `lo`, and a u32 filter sending every packet whose TCP source port is the server's into it.
 * Other loopback traffic (a client talking to Berth, Berth's own replies) is not limited.
 *
 * Needs root and the `tc` binary (Debian's iproute2); the kernel needs HTB and the u32
 * classifier (sch_htb, cls_u32). The shaping is removed by the function returned, and
 * `removeLoopbackShaping` cleans up what an interrupted run left behind.
 */
import { execFileSync } from 'node:child_process';

/** tc's own rate syntax, limited to bits per second (e.g. 500mbit, 4gbit). */
export const LINK_RATE = /^\d+(\.\d+)?[kmg]?bit$/;

function tc(args: string[]): void {
  try {
    execFileSync('tc', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`tc ${args.join(' ')} failed${stderr ? `: ${stderr}` : ''} (needs root, iproute2 and the kernel's HTB qdisc)`, {
      cause: err,
    });
  }
}

/** Removes any root qdisc from `lo` (back to the kernel's default); quiet when there is none. */
export function removeLoopbackShaping(): void {
  try {
    execFileSync('tc', ['qdisc', 'del', 'dev', 'lo', 'root'], { stdio: 'ignore' });
  } catch {
    // Nothing was installed.
  }
}

/**
 * Limits what the server on `port` sends over loopback to `rate` (tc syntax, e.g. 4gbit).
 * The burst is large enough for loopback's 64 KiB segments at multi-gigabit rates.
 */
export function shapeRepliesFrom(port: number, rate: string): () => void {
  if (!LINK_RATE.test(rate)) throw new Error(`link rate ${JSON.stringify(rate)} is not a tc rate such as 500mbit or 4gbit`);
  removeLoopbackShaping();
  tc(['qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb']);
  try {
    tc([
      'class',
      'add',
      'dev',
      'lo',
      'parent',
      '1:',
      'classid',
      '1:10',
      'htb',
      'rate',
      rate,
      'ceil',
      rate,
      'burst',
      '4mb',
      'cburst',
      '4mb',
    ]);
    tc([
      'filter',
      'add',
      'dev',
      'lo',
      'parent',
      '1:',
      'protocol',
      'ip',
      'prio',
      '1',
      'u32',
      'match',
      'ip',
      'sport',
      String(port),
      '0xffff',
      'flowid',
      '1:10',
    ]);
  } catch (err) {
    removeLoopbackShaping();
    throw err;
  }
  return removeLoopbackShaping;
}

import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;

interface ProcStat {
  ppid: number;
  /** utime + stime, seconds. */
  cpu: number;
}

function readStat(pid: number | string): ProcStat | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Fields after the parenthesised command name (which may contain spaces): ppid is the 2nd, utime the 12th, stime the 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), cpu: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND };
}

/**
 * User + system CPU seconds of a server process and of every live process below it (a
 * worker cluster's workers), from /proc/<pid>/stat. Read before and after a workload: the
 * difference is what serving it cost, whichever process of the server did the work.
 */
export function processTreeCpuSeconds(pid: number): number | null {
  const root = readStat(pid);
  if (!root) return null;
  const children = new Map<number, number[]>();
  const cpu = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(entry);
    if (!stat) continue;
    const id = Number(entry);
    cpu.set(id, stat.cpu);
    const siblings = children.get(stat.ppid) ?? [];
    siblings.push(id);
    children.set(stat.ppid, siblings);
  }
  let total = root.cpu;
  const queue = [...(children.get(pid) ?? [])];
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    total += cpu.get(next) ?? 0;
    queue.push(...(children.get(next) ?? []));
  }
  return total;
}

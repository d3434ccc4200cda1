import { corruptionCount, type FsckReport, type Problem } from './types.js';

/** Human-readable fsck report: one line per problem, then a verdict line. */
export function formatReport(report: FsckReport, repair: boolean): string {
  const { checked } = report;
  const lines = [
    `checked ${checked.blobRows} blob rows, ${checked.blobFiles ?? '?'} stored blobs, ${checked.manifests} manifests, ` +
      `${checked.uploadRows} upload sessions, ${checked.stagingAreas ?? '?'} staging areas` +
      (checked.orphanRepositories != null ? `, ${checked.orphanRepositories} repositories without a project` : '') +
      (checked.contentVerified ? ' (content re-hashed)' : ''),
  ];
  for (const problem of report.problems) lines.push(formatProblem(problem));
  for (const skipped of report.skipped) lines.push(`SKIPPED   ${skipped}`);
  lines.push(verdict(report, repair));
  return `${lines.join('\n')}\n`;
}

function formatProblem(problem: Problem): string {
  const label = problem.severity === 'corruption' ? 'CORRUPT ' : problem.severity === 'notice' ? 'NOTICE  ' : 'LEFTOVER';
  const state = problem.repaired ? ' [repaired]' : '';
  return `${label}  ${problem.kind} ${problem.subject}: ${problem.message}${state}`;
}

function verdict(report: FsckReport, repair: boolean): string {
  const corrupt = corruptionCount(report);
  const leftovers = report.problems.filter((p) => p.severity === 'leftover' && !p.repaired).length;
  const repaired = report.problems.filter((p) => p.repaired).length;
  const orphans = report.checked.orphanRepositories ?? 0;
  const parts: string[] = [];
  if (orphans > 0) parts.push(`${orphans} repositor${orphans === 1 ? 'y' : 'ies'} without a project, admin-only`);
  if (repaired > 0) parts.push(`${repaired} repaired`);
  if (leftovers > 0) parts.push(`${leftovers} leftover${leftovers === 1 ? '' : 's'}${repair ? '' : ' (run with --repair to remove)'}`);
  const suffix = parts.length > 0 ? ` (${parts.join('; ')})` : '';
  if (corrupt === 0) return `result: consistent${suffix}`;
  return `result: ${corrupt} problem${corrupt === 1 ? '' : 's'} found${suffix}`;
}

/**
 * The `project` label, bounded: the first `limit` distinct projects seen get their own series,
 * later ones share `_other` (metrics.projectlabels), so a registry with many thousands of
 * projects cannot make Prometheus hold thousands of series per counter. Only requests that
 * succeeded reach here, so a stranger cannot fill the set with names that do not exist.
 */
export class ProjectLabels {
  static readonly OTHER = '_other';
  private readonly seen = new Set<string>();

  constructor(private readonly limit: number) {}

  label(project: string): string {
    if (this.seen.has(project)) return project;
    if (this.seen.size >= this.limit) return ProjectLabels.OTHER;
    this.seen.add(project);
    return project;
  }
}

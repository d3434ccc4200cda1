import { z } from 'zod';

/**
 * A package list as the matcher takes it (the API and `berth vulndb match`): OSV's names —
 * `Debian:12` with the SOURCE package, `Alpine:v3.19` with the origin package, `npm`, `Go`
 * (module path), `PyPI`, `crates.io` — and the installed version. The SBOM extractor that
 * reads image layers produces this list.
 */
export const installedPackageSchema = z
  .object({
    ecosystem: z.string().min(1).max(64),
    name: z.string().min(1).max(320),
    version: z.string().min(1).max(256),
  })
  .strict();

export const packageListSchema = z.array(installedPackageSchema).max(100_000);

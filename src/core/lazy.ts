import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A CommonJS package loaded on first use instead of at start: the parsers and writers of
 * features most registries rarely or never exercise (CVSS, CycloneDX, package URLs, version
 * schemes, archive readers) then cost no resident memory in an idle server (issue 19: idle RSS).
 * Only for packages used synchronously; `await import()` does the same for async call sites.
 */
export function lazyPackage<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}

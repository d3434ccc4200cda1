// Shared pieces of the edit forms (webhooks, registry endpoints, replication, proxy cache, policies).
import { useState } from 'react';

/** "a, b c" → ["a", "b", "c"]: glob and id lists typed in one field. */
export function listOf(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function textOf(list: readonly string[] | null | undefined): string {
  return (list ?? []).join(', ');
}

/** Runs a call, keeping its error (shown next to the form) and a busy flag. */
export function useAction() {
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const run = async <T,>(call: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    try {
      const result = await call();
      setError(undefined);
      return result;
    } catch (e) {
      setError(e as Error);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run, clear: () => setError(undefined) };
}

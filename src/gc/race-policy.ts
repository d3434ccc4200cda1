import { collectedMeanwhile } from '../core/registry.js';
import type { Policy } from '../core/policies.js';
import type { GcMetadata } from './ports.js';

/**
 * GC's rule on the blob-commit hook: an upload whose bytes were renamed into place while a
 * collector was deleting the same digest's bytes may have lost them, so it is refused (the
 * client pushes again). The deletion journal says whether the two could have overlapped;
 * see docs/gc.md.
 */
export function gcRacePolicy(store: GcMetadata): Policy {
  return {
    name: 'gc',
    hooks: {
      'blob.commit': async (context, tx) => {
        if (context.phase !== 'commit' || !tx) return;
        if (await store.within(tx).deletionOverlaps(context.digest, context.lastAppendAt)) throw collectedMeanwhile(context.digest);
      },
    },
  };
}

import { cleanup, configure } from '@testing-library/react';
import { afterEach, vi } from 'vitest';

// A busy machine (CI, shared runners) can be slow to settle a render: wait up to 5 s.
configure({ asyncUtilTimeout: 5000 });

afterEach(() => {
  localStorage.clear();
  cleanup();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

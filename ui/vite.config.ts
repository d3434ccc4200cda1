import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));

// The SPA: built into dist/ui (index.html + hashed assets/), served by `berth serve` at /.
// No inline scripts or styles in the output: the server sends CSP default-src 'self'.
export default defineConfig({
  root,
  base: '/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../dist/ui', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // Inlined assets would become data: URLs; CSP img-src 'self' refuses them.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: true,
  },
  server: {
    // `npx vite ui` during development: the API of a local `berth serve`.
    proxy: { '/api': 'http://127.0.0.1:5000' },
  },
  test: {
    root,
    environment: 'jsdom',
    include: ['src/**/*.test.tsx'],
    setupFiles: ['src/test-setup.ts'],
    // jsdom renders of the bigger views took over the 5 s default on a busy 2-core machine.
    testTimeout: 30_000,
  },
});

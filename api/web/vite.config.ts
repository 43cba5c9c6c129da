import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

/**
 * The web chat page: Preact through esbuild's JSX transform (no plugin needed), bundled into
 * api/web/dist, which the api tier serves at `/`. `npm ci` builds it (the `prepare` script).
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // The page talks to the same origin only; keep everything in files the server serves.
    assetsInlineLimit: 0,
  },
});

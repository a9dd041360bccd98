/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// Tauri serves the built files from its own origin, so the default base `/` is right.
export default defineConfig({
  plugins: [preact({ prefreshEnabled: false })],
  clearScreen: false,
  // src-tauri's devUrl points here.
  server: { port: 5173, strictPort: true },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    // The CSP allows scripts only from 'self' and workers from 'self'/blob:: never inline
    // anything as a data: URL, and no inline module-preload polyfill.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      output: {
        // pdf.js's worker ships as .mjs; name it .js so any static server gives it a
        // JavaScript MIME type (a module worker refuses anything else).
        assetFileNames: (info) =>
          (info.names?.[0] ?? '').endsWith('.mjs') ? 'assets/[name]-[hash].js' : 'assets/[name]-[hash][extname]',
      },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test/setup.ts'],
  },
});

import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Built into dist/, which the inspector serves (packages/core/src/inspector/static-files.ts).
// `npm run dev` proxies the API to an inspector started with a fixed token on port 8081.
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 800 },
  server: {
    proxy: { '/api': { target: 'http://127.0.0.1:8081', ws: true, changeOrigin: true } },
  },
});

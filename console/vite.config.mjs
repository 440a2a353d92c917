import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Served by the gateway at /console (gateway/src/routes/console.ts) from dist/.
export default defineConfig({
  base: '/console/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, reportCompressedSize: true },
});

import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import bitrix24UI from '@bitrix24/b24ui-nuxt/vite'

/** The storage definitions the daemon uses too (one source of truth). */
const storageJson = fileURLToPath(new URL('../src/kassa_appliance/bitrix/storage.json', import.meta.url))

export default defineConfig({
  // A static local app is served from a CDN folder of Bitrix24: every path must be relative.
  base: './',
  resolve: { alias: { '#storage': storageJson } },
  server: { fs: { allow: ['..'] } },
  plugins: [
    vue(),
    bitrix24UI({
      colorMode: false,
      // no Markdown/prose components: they pull motion-v (≈ 100 kB gzip) and every file-type icon
      prose: false,
      mdc: false,
      // theme classes (and so Tailwind's CSS) only for the UI kit components the app uses
      experimental: { componentDetection: true },
      components: { dts: 'src/components.d.ts' },
      autoImport: { dts: 'src/auto-imports.d.ts' }
    })
  ],
  build: {
    target: 'es2020',
    // the entry (SDK + UI kit + Vue) is ≈ 580 kB, 190 kB gzip; pages, the pull client and
    // the QR library are separate chunks
    chunkSizeWarningLimit: 600,
    assetsInlineLimit: 4096
  }
})

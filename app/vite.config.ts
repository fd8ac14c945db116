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
      components: { dts: 'src/components.d.ts' },
      autoImport: { dts: 'src/auto-imports.d.ts' }
    })
  ],
  build: {
    target: 'es2020',
    // the entry (SDK + UI kit + Vue) is ≈ 1 MB, 318 kB gzip; pages are separate chunks
    chunkSizeWarningLimit: 1200,
    assetsInlineLimit: 4096
  }
})

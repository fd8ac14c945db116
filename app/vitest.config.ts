import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vitest/config'

// Unit tests cover the page logic (src/lib), which needs neither the UI kit nor a browser.
export default defineConfig({
  resolve: {
    alias: {
      '#storage': fileURLToPath(new URL('../src/kassa_appliance/bitrix/storage.json', import.meta.url))
    }
  },
  test: { include: ['src/**/*.test.ts'], environment: 'node' }
})

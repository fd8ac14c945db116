// Copies the browser tests' screenshots the README shows from build/screenshots/ (where
// tests/app_browser.py saves them) to docs/screenshots/, kept small: a phone screenshot
// (device pixel ratio 3) is scaled down to CSS pixels; the rest are copied as Chromium
// wrote them (its encoder beats pngjs's). Run after the browser tests:
//   .venv/bin/python -m pytest tests/test_app_*.py && node app/scripts/docs-screenshots.mjs
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pngjs from 'pngjs'

const { PNG } = pngjs
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const from = join(root, 'build', 'screenshots')
const to = join(root, 'docs', 'screenshots')

/** name → the factor it is scaled down by (1: as taken). */
const SHOWN = {
  'install-done': 1,
  'pairing-online': 1,
  'cashier-sale-done': 1,
  'cashier-phone-done': 3,
  'journal-filtered-detail': 1,
  'fleet-alerts': 1,
  'settings-refused': 1,
  'automation-refused': 1
}

/** Box filter: every `factor` × `factor` block of pixels becomes their average. */
function shrink(image, factor) {
  if (factor === 1) return image
  const width = Math.floor(image.width / factor)
  const height = Math.floor(image.height / factor)
  const out = new PNG({ width, height })
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sum = [0, 0, 0, 0]
      for (let dy = 0; dy < factor; dy++) {
        for (let dx = 0; dx < factor; dx++) {
          const i = ((y * factor + dy) * image.width + (x * factor + dx)) * 4
          for (let c = 0; c < 4; c++) sum[c] += image.data[i + c]
        }
      }
      const o = (y * width + x) * 4
      for (let c = 0; c < 4; c++) out.data[o + c] = Math.round(sum[c] / (factor * factor))
    }
  }
  return out
}

mkdirSync(to, { recursive: true })
let missing = 0
for (const [name, factor] of Object.entries(SHOWN)) {
  let original
  try {
    original = readFileSync(join(from, `${name}.png`))
  } catch {
    console.error(`missing ${name}.png in ${from}: run its browser test first`)
    missing += 1
    continue
  }
  const image = PNG.sync.read(original)
  const small = shrink(image, factor)
  const bytes = factor === 1 ? original : PNG.sync.write(small, { deflateLevel: 9, colorType: 2 })
  writeFileSync(join(to, `${name}.png`), bytes)
  console.log(`docs/screenshots/${name}.png  ${small.width}×${small.height}  ${(bytes.length / 1024).toFixed(0)} kB`)
}
process.exit(missing ? 1 : 0)

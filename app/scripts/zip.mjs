// Packs dist/ into dist/kassa-app.zip with index.html at the archive root, as the Bitrix24
// local-app form expects ("Archive containing your application (zip)"). Refuses a build
// that still references a remote script or stylesheet: a static app must bundle everything.
import { createWriteStream, existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import archiver from 'archiver'

const dist = fileURLToPath(new URL('../dist/', import.meta.url))
const target = join(dist, 'kassa-app.zip')

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : [path]
  })
}

if (!existsSync(join(dist, 'index.html'))) {
  console.error('zip: dist/index.html is missing; run vite build first')
  process.exit(1)
}
rmSync(target, { force: true })
const all = files(dist).filter((path) => path !== target)
const remote = /<(?:script|link)\b[^>]*\b(?:src|href)=["'](?:https?:)?\/\//i
for (const path of all.filter((p) => p.endsWith('.html'))) {
  if (remote.test(readFileSync(path, 'utf-8'))) {
    console.error(`zip: ${relative(dist, path)} loads a remote script or stylesheet; bundle it instead`)
    process.exit(1)
  }
}

const output = createWriteStream(target)
const archive = archiver('zip', { zlib: { level: 9 } })
archive.on('warning', (error) => { throw error })
archive.on('error', (error) => { throw error })
archive.pipe(output)
// A fixed date: the same build gives the same archive.
const date = new Date('2026-01-01T00:00:00Z')
for (const path of all.sort()) archive.file(path, { name: relative(dist, path).split('\\').join('/'), date })
await archive.finalize()
await new Promise((resolve) => output.on('close', resolve))
console.log(`zip: ${relative(process.cwd(), target)} (${all.length} files, ${archive.pointer()} bytes)`)

#!/usr/bin/env node
// The booth's build: esbuild bundles the protocol library and the booth into voting/web/ (committed as
// package data, so that `pip install` and `make demo` need no Node). Deterministic: fixed target, minified,
// no source maps, no timestamps, inputs read in sorted order; tests/system/test_web_build.py rebuilds into a
// temporary directory and requires byte equality with the committed files.
//
//   static/tvote-protocol.js   src/protocol/index.js as one ES module (for pages: import { … } from it)
//   static/encrypt-worker.js   src/worker/encrypt-worker.js as a classic Web Worker script (no imports)
//   static/qr-worker.js        src/worker/qr-worker.js, Check my ballot's QR decoder (npm `qr`), the same way
//   static/<name>.js           each src/booth/<name>.js, bundled as an ES module; it imports the library as
//                              '/static/tvote-protocol.js' (left external: one copy, shared by every page)
//   static/<name>.css          each src/booth/<name>.css, bundled and minified
//   pages/<name>.html          each pages/<name>.html, with its SRI attributes filled in (below)
//   assets.json                {"<path under voting/web>": {sha256: hex, sha384: base64, bytes}} for each
//                              file above, sorted by path
//
// and the polling-place kiosk's page into the kiosk package (kiosk/web/, served by `tvote-kiosk serve`:
// / → pages/kiosk.html, /static/… from static/), the same way:
//   static/tvote-protocol.js, static/encrypt-worker.js   as above (the kiosk encrypts like the booth)
//   static/<name>.js, static/<name>.css                  each src/kiosk/<name>.js / .css
//   pages/kiosk.html                                     pages/kiosk.html (not served by the election server)
//   assets.json
//
// A page that runs booth code preloads the library with its SRI value, so that the module the browser imports
// is the one pinned:  <link rel="modulepreload" href="/static/tvote-protocol.js" integrity="sha384-BUILD">
//
// SRI placeholder: in a page, a <script src="/static/…"> or <link href="/static/…"> tag that carries
// integrity="sha384-BUILD" gets the built file's integrity value (sha384-<base64>) in its place. A
// placeholder on a tag that names no built file, a /static/ reference that is not built, or a <script>/<link>
// that loads from another origin (http:, https:, //…) fails the build.
//
// Usage: node build.mjs [--out DIR] [--kiosk-out DIR]   (defaults: ../voting/web, ../kiosk/web)

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const HERE = dirname(fileURLToPath(import.meta.url));
export const TARGET = ['es2022', 'chrome111', 'firefox115', 'safari16.4'];
export const PLACEHOLDER = 'sha384-BUILD';

const COMMON = {
  bundle: true,
  minify: true,
  sourcemap: false,
  target: TARGET,
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'warning',
  write: false,
  absWorkingDir: HERE,
};

function listed(dir, suffix) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(suffix))
    .sort();
}

async function bundle(entry, options) {
  const result = await esbuild.build({ ...COMMON, entryPoints: [entry], ...options });
  if (result.outputFiles.length !== 1) throw new Error(`${entry}: expected one output file`);
  return result.outputFiles[0].contents;
}

function digest(algorithm, bytes, encoding) {
  return createHash(algorithm).update(bytes).digest(encoding);
}

/** Fill integrity="sha384-BUILD" in the page's <script src> / <link href> tags naming built files. */
export function fillIntegrity(html, built, page) {
  return html.replace(/<(script|link)\b[^>]*>/gi, (tag) => {
    if (/\s(?:src|href)="(?:[a-z][a-z0-9+.-]*:|\/\/)/i.test(tag))
      throw new Error(`${page}: a script or style from another origin (the booth loads only its own): ${tag}`);
    const ref = /\s(?:src|href)="(\/static\/[^"]+)"/i.exec(tag);
    const wantsSri = tag.includes(`integrity="${PLACEHOLDER}"`);
    if (!ref) {
      if (wantsSri) throw new Error(`${page}: ${PLACEHOLDER} on a tag that names no /static/ file: ${tag}`);
      return tag;
    }
    const path = ref[1].slice(1); // "static/…"
    if (!built.has(path)) throw new Error(`${page}: ${ref[1]} is not built`);
    if (!wantsSri) return tag;
    return tag.replace(`integrity="${PLACEHOLDER}"`, `integrity="sha384-${digest('sha384', built.get(path), 'base64')}"`);
  });
}

/** The pages of `pages` that are the kiosk's (served by the kiosk service, never by the election server). */
export const KIOSK_PAGES = ['kiosk.html'];

async function entries(files, dir) {
  for (const f of listed(dir, '.js'))
    files.set(`static/${f}`, await bundle(join(dir, f), { format: 'esm', external: ['/static/*'] }));
  for (const f of listed(dir, '.css'))
    files.set(`static/${f}`, await bundle(join(dir, f), { loader: { '.css': 'css' }, external: ['/static/*'] }));
}

function addPages(files, pages, names) {
  for (const f of names) {
    const html = readFileSync(join(pages, f), 'utf8');
    files.set(`pages/${f}`, new TextEncoder().encode(fillIntegrity(html, files, `pages/${f}`)));
  }
}

/** Replace `out`'s static/ and pages/ with `files` (path → bytes) and write assets.json; returns its object. */
function writeOut(out, files) {
  for (const sub of ['static', 'pages']) rmSync(join(out, sub), { recursive: true, force: true });
  const assets = {};
  for (const path of [...files.keys()].sort()) {
    const bytes = files.get(path);
    mkdirSync(dirname(join(out, path)), { recursive: true });
    writeFileSync(join(out, path), bytes);
    assets[path] = { bytes: bytes.length, sha256: digest('sha256', bytes, 'hex'), sha384: digest('sha384', bytes, 'base64') };
  }
  writeFileSync(join(out, 'assets.json'), `${JSON.stringify(assets, null, 2)}\n`);
  return assets;
}

/**
 * Build the booth into `out`; `booth` and `pages` are the source folders of the booth's entries and pages
 * (default src/booth and pages; tests pass others). Returns assets.json's object.
 */
export async function build(out, { booth = join(HERE, 'src', 'booth'), pages = join(HERE, 'pages') } = {}) {
  const files = new Map(); // path under out -> bytes
  files.set('static/tvote-protocol.js', await bundle('src/protocol/index.js', { format: 'esm' }));
  files.set('static/encrypt-worker.js', await bundle('src/worker/encrypt-worker.js', { format: 'iife' }));
  files.set('static/qr-worker.js', await bundle('src/worker/qr-worker.js', { format: 'iife' }));
  await entries(files, booth);
  addPages(files, pages, listed(pages, '.html').filter((f) => !KIOSK_PAGES.includes(f)));
  return writeOut(out, files);
}

/** Build the kiosk's page into `out` (the kiosk package's web/); returns assets.json's object. */
export async function buildKiosk(out, { kiosk = join(HERE, 'src', 'kiosk'), pages = join(HERE, 'pages') } = {}) {
  const files = new Map();
  files.set('static/tvote-protocol.js', await bundle('src/protocol/index.js', { format: 'esm' }));
  files.set('static/encrypt-worker.js', await bundle('src/worker/encrypt-worker.js', { format: 'iife' }));
  await entries(files, kiosk);
  addPages(files, pages, KIOSK_PAGES.filter((f) => existsSync(join(pages, f))));
  return writeOut(out, files);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const option = (name, fallback) => {
    const at = process.argv.indexOf(name);
    return resolve(at >= 0 ? process.argv[at + 1] : fallback);
  };
  const out = option('--out', join(HERE, '..', 'voting', 'web'));
  const kioskOut = option('--kiosk-out', join(HERE, '..', 'kiosk', 'web'));
  for (const [dir, assets] of [[out, await build(out)], [kioskOut, await buildKiosk(kioskOut)]])
    for (const [path, a] of Object.entries(assets)) console.log(`${relative(process.cwd(), join(dir, path))} ${a.bytes} bytes`);
}

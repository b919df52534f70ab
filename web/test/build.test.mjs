// The build's SRI placeholder convention (build.mjs fillIntegrity).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { PLACEHOLDER, build, buildKiosk, fillIntegrity } from '../build.mjs';

const built = new Map([
  ['static/booth.js', new TextEncoder().encode('console.log(1)')],
  ['static/booth.css', new TextEncoder().encode('body{}')],
]);
const sri = (path) => `sha384-${createHash('sha384').update(built.get(path)).digest('base64')}`;

test("placeholders on /static/ scripts and styles get the built files' integrity", () => {
  const html = `<link rel="stylesheet" href="/static/booth.css" integrity="${PLACEHOLDER}">
<script type="module" src="/static/booth.js" integrity="${PLACEHOLDER}"></script>
<script type="module" src="/static/booth.js"></script>`;
  const out = fillIntegrity(html, built, 'page.html');
  assert.ok(out.includes(`href="/static/booth.css" integrity="${sri('static/booth.css')}"`));
  assert.ok(out.includes(`src="/static/booth.js" integrity="${sri('static/booth.js')}"`));
  assert.ok(out.endsWith('<script type="module" src="/static/booth.js"></script>'));
  assert.ok(!out.includes(PLACEHOLDER));
});

test('a reference to a file that is not built, or a placeholder without one, fails the build', () => {
  assert.throws(() => fillIntegrity('<script src="/static/missing.js"></script>', built, 'p.html'), /not built/);
  assert.throws(
    () => fillIntegrity(`<script src="https://cdn.example/x.js" integrity="${PLACEHOLDER}"></script>`, built, 'p.html'),
    /another origin/,
  );
  assert.throws(() => fillIntegrity(`<link rel="stylesheet" href="//cdn.example/x.css">`, built, 'p.html'), /another origin/);
  assert.throws(() => fillIntegrity(`<b integrity="${PLACEHOLDER}"></b><script integrity="${PLACEHOLDER}">1</script>`, built, 'p.html'), /names no \/static\/ file/);
});

test('booth entries and pages are picked up: bundled, copied, pinned by SRI, listed in assets.json', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tvote-build-'));
  const [booth, pages, out] = ['booth', 'pages', 'out'].map((d) => join(dir, d));
  mkdirSync(booth);
  mkdirSync(pages);
  writeFileSync(join(booth, 'vote.js'), "import { trackingCode } from '/static/tvote-protocol.js';\nexport const f = trackingCode;\n");
  writeFileSync(join(booth, 'booth.css'), 'body {\n  margin: 0;\n}\n');
  writeFileSync(
    join(pages, 'vote.html'),
    `<!doctype html><link rel="stylesheet" href="/static/booth.css" integrity="${PLACEHOLDER}">
<link rel="modulepreload" href="/static/tvote-protocol.js" integrity="${PLACEHOLDER}">
<script type="module" src="/static/vote.js" integrity="${PLACEHOLDER}"></script>`,
  );
  const assets = await build(out, { booth, pages });
  assert.deepEqual(Object.keys(assets).sort(), [
    'pages/vote.html',
    'static/booth.css',
    'static/encrypt-worker.js',
    'static/qr-worker.js',
    'static/tvote-protocol.js',
    'static/vote.js',
  ]);
  const js = readFileSync(join(out, 'static', 'vote.js'), 'utf8');
  assert.match(js, /from"\/static\/tvote-protocol\.js"/); // the library stays one shared module
  assert.equal(readFileSync(join(out, 'static', 'booth.css'), 'utf8'), 'body{margin:0}\n');
  const html = readFileSync(join(out, 'pages', 'vote.html'), 'utf8');
  for (const path of ['static/booth.css', 'static/tvote-protocol.js', 'static/vote.js'])
    assert.ok(html.includes(`href="/${path}" integrity="sha384-${assets[path].sha384}"`) || html.includes(`src="/${path}" integrity="sha384-${assets[path].sha384}"`), path);
  const index = JSON.parse(readFileSync(join(out, 'assets.json'), 'utf8'));
  assert.deepEqual(index, assets);
});

test("the kiosk's page goes into the kiosk package's output, never into the booth's", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tvote-build-'));
  const [booth, kiosk, pages, out, kioskOut] = ['booth', 'kiosk', 'pages', 'out', 'kiosk-out'].map((d) => join(dir, d));
  for (const d of [booth, kiosk, pages]) mkdirSync(d);
  writeFileSync(join(booth, 'vote.js'), 'export const a = 1;\n');
  writeFileSync(join(kiosk, 'kiosk.js'), "import { trackingCode } from '/static/tvote-protocol.js';\nexport const f = trackingCode;\n");
  writeFileSync(join(kiosk, 'kiosk.css'), 'body {\n  margin: 0;\n}\n');
  writeFileSync(join(pages, 'vote.html'), '<!doctype html><script type="module" src="/static/vote.js"></script>');
  writeFileSync(join(pages, 'kiosk.html'), `<!doctype html><link rel="stylesheet" href="/static/kiosk.css" integrity="${PLACEHOLDER}">
<script type="module" src="/static/kiosk.js" integrity="${PLACEHOLDER}"></script>`);
  const assets = await build(out, { booth, pages });
  assert.ok(!('pages/kiosk.html' in assets) && !('static/kiosk.js' in assets));
  const kioskAssets = await buildKiosk(kioskOut, { kiosk, pages });
  assert.deepEqual(Object.keys(kioskAssets).sort(), [
    'pages/kiosk.html',
    'static/encrypt-worker.js',
    'static/kiosk.css',
    'static/kiosk.js',
    'static/tvote-protocol.js',
  ]);
  const html = readFileSync(join(kioskOut, 'pages', 'kiosk.html'), 'utf8');
  assert.ok(html.includes(`src="/static/kiosk.js" integrity="sha384-${kioskAssets['static/kiosk.js'].sha384}"`));
  assert.deepEqual(JSON.parse(readFileSync(join(kioskOut, 'assets.json'), 'utf8')), kioskAssets);
});

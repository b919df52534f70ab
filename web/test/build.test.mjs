// The build's SRI placeholder convention (build.mjs fillIntegrity).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';

import { PLACEHOLDER, fillIntegrity } from '../build.mjs';

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

// Headless Chromium loads a negotiated media URL (`/media/<sha256>/<width>`) in an <img> with
// its own Accept header and must get WebP with `Vary: Accept`; the fixed `.jpg` URL stays JPEG.
//
//   BFF_URL=http://127.0.0.1:18080 npm test      (or: bash tests/browser/run.sh)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const BFF_URL = (process.env.BFF_URL || '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FIXTURE = fs.readFileSync(new URL('../media/fixtures/rotated-gps.jpg', import.meta.url));

async function gql(token, query, variables = {}) {
  const response = await fetch(`${BFF_URL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

test('Chromium gets WebP from a negotiated variant URL', { timeout: 120_000 }, async () => {
  assert.ok(BFF_URL, 'set BFF_URL');
  const login = await fetch(`${BFF_URL}/playground/dev-login`, { method: 'POST' });
  assert.equal(login.status, 200, 'dev login (BFF_PLAYGROUND__DEV_LOGIN=true)');
  const { token } = await login.json();

  // Upload the fixture with createUpload's signed PUT, wait until it is processed.
  const created = await gql(token, `mutation($input: CreateUploadInput!) { createUpload(input: $input) {
      upload { id } putUrl putHeaders { name value } } }`,
  { input: { filename: 'rotated.jpg', mimeType: 'image/jpeg', sizeBytes: FIXTURE.length } });
  const { upload, putUrl, putHeaders } = created.createUpload;
  const headers = Object.fromEntries(putHeaders.filter((h) => h.name !== 'Content-Length').map((h) => [h.name, h.value]));
  const put = await fetch(`${BFF_URL}${putUrl}`, { method: 'PUT', headers, body: FIXTURE });
  assert.equal(put.status, 200, await put.text());
  let ready;
  for (let i = 0; i < 600 && !ready; i++) {
    const data = await gql(token, 'query($id: String!) { upload(id: $id) { status url(width: 160) jpeg: url(width: 160, format: JPEG) } }', { id: upload.id });
    if (data.upload.status === 'READY') ready = data.upload;
    else await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(ready, 'processed');

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${BFF_URL}/healthz`);
    const seen = new Map();
    page.on('response', (response) => seen.set(new URL(response.url()).pathname, response));
    await page.setContent(`<img id="auto" src="${BFF_URL}${ready.url}"><img id="jpeg" src="${BFF_URL}${ready.jpeg}">`);
    await page.waitForFunction(() => [...document.images].every((img) => img.complete && img.naturalWidth > 0));
    const auto = seen.get(ready.url);
    assert.ok(auto, 'the <img> was fetched');
    const accept = (await auto.request().allHeaders()).accept;
    assert.match(accept, /image\/webp/, `Chromium's own image Accept: ${accept}`);
    assert.equal((await auto.allHeaders())['content-type'], 'image/webp');
    assert.match((await auto.allHeaders()).vary, /accept/i);
    assert.equal((await seen.get(ready.jpeg).allHeaders())['content-type'], 'image/jpeg');
    const sizes = await page.evaluate(() => [...document.images].map((img) => [img.naturalWidth, img.naturalHeight]));
    assert.deepEqual(sizes, [[160, 320], [160, 320]], 'upright (portrait) in both formats');
  } finally {
    await browser.close();
  }
});

// tus-js-client (the reference tus client) and curl against a live mobile-bff.
// BFF_URL, BFF_TOKEN (alice) and BFF_OTHER_TOKEN (bob) come from run.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as tus from 'tus-js-client';

const BASE = process.env.BFF_URL;
const TOKEN = process.env.BFF_TOKEN;
const OTHER = process.env.BFF_OTHER_TOKEN;
const FIXTURE = readFileSync(new URL('./fixtures/rotated-gps.jpg', import.meta.url));

async function gql(query, variables = {}, token = TOKEN) {
  const response = await fetch(`${BASE}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  assert.equal(response.status, 200);
  return response.json();
}

/** Uploads `bytes` with tus-js-client; resolves with the upload URL and the PATCH offsets sent. */
function tusUpload(bytes, options = {}) {
  return new Promise((resolve, reject) => {
    const patches = [];
    const upload = new tus.Upload(bytes, {
      endpoint: `${BASE}/uploads/`,
      headers: { Authorization: `Bearer ${TOKEN}` },
      metadata: { filename: 'rotated-gps.jpg', filetype: 'image/jpeg' },
      chunkSize: 2048,
      retryDelays: [],
      removeFingerprintOnSuccess: true,
      onBeforeRequest(req) {
        if (req.getMethod() === 'PATCH') patches.push(Number(req.getHeader('Upload-Offset')));
      },
      onSuccess() { resolve({ url: upload.url, patches }); },
      onError(error) { reject(error); },
      ...options,
      ...(options.onChunkComplete ? { onChunkComplete: (...args) => options.onChunkComplete(upload, ...args) } : {}),
    });
    upload.start();
  });
}

async function settled(id) {
  const query = `query($id: String!) { upload(id: $id) { status failureReason width height mimeType blurhash } }`;
  for (let i = 0; i < 600; i++) {
    const { data } = await gql(query, { id });
    if (['READY', 'FAILED'].includes(data.upload?.status)) return data.upload;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`upload ${id} never settled`);
}

/** Width and height of a WebP (VP8 lossy, VP8L or VP8X). */
function webpSize(buf) {
  assert.equal(buf.toString('ascii', 0, 4), 'RIFF');
  assert.equal(buf.toString('ascii', 8, 12), 'WEBP');
  const chunk = buf.toString('ascii', 12, 16);
  if (chunk === 'VP8 ') return [buf.readUInt16LE(26) & 0x3fff, buf.readUInt16LE(28) & 0x3fff];
  if (chunk === 'VP8X') return [buf.readUIntLE(24, 3) + 1, buf.readUIntLE(27, 3) + 1];
  const bits = buf.readUInt32LE(21);
  return [(bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1];
}

const idOf = (url) => url.split('/').pop();
const hasMetadata = (buf) => buf.includes('Exif') || buf.includes(Buffer.from('II*\0', 'binary')) || buf.includes(Buffer.from('MM\0*', 'binary'));

test('a rotated JPEG with GPS tags, uploaded in checksummed chunks, becomes an upright WebP without metadata', async () => {
  assert.ok(hasMetadata(FIXTURE), 'the fixture carries EXIF (Orientation=6, GPS)');
  // tus-js-client sends no Upload-Checksum itself: add a sha1 per chunk as the checksum extension allows.
  const patchesSent = [];
  const { url } = await tusUpload(FIXTURE, {
    onBeforeRequest(req) {
      if (req.getMethod() !== 'PATCH') return;
      const offset = Number(req.getHeader('Upload-Offset'));
      const chunk = FIXTURE.subarray(offset, Math.min(offset + 2048, FIXTURE.length));
      req.setHeader('Upload-Checksum', `sha1 ${createHash('sha1').update(chunk).digest('base64')}`);
      patchesSent.push(offset);
    },
  });
  assert.ok(patchesSent.length >= 2, `chunked: ${patchesSent}`);
  const id = idOf(url);
  const ready = await settled(id);
  assert.equal(ready.status, 'READY', JSON.stringify(ready));
  assert.deepEqual([ready.width, ready.height], [200, 400], 'upright: the stored 400×200 rotated by Orientation=6');
  assert.equal(ready.mimeType, 'image/jpeg');

  const created = await gql(
    `mutation($input: CreatePostInput!) { createPost(input: $input) { post { media { status width height url(width: 100, dpr: 1.5) } } } }`,
    { input: { body: 'from tus-js-client', media: [{ uploadId: id }] } },
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  const media = created.data.createPost.post.media[0];
  assert.equal(media.status, 'READY');
  const variant = await fetch(`${BASE}${media.url}`, { headers: { accept: 'image/webp,image/*' } });
  assert.equal(variant.status, 200);
  assert.equal(variant.headers.get('content-type'), 'image/webp');
  assert.match(variant.headers.get('vary') ?? '', /accept\b/i);
  assert.equal(variant.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  const bytes = Buffer.from(await variant.arrayBuffer());
  const [w, h] = webpSize(bytes);
  assert.deepEqual([w, h], [160, 320], 'at least 100×1.5 = 150 px wide, at most the next ladder step, portrait');
  assert.ok(!hasMetadata(bytes), 'no EXIF or GPS in the served variant');

  // Range requests with curl.
  const headers = execFileSync('curl', ['-s', '-o', '/dev/null', '-D', '-', '-r', '0-99', `${BASE}${media.url}.jpg`]).toString();
  assert.match(headers, /^HTTP\/1\.1 206/m, headers);
  assert.match(headers, /^content-range: bytes 0-99\/\d+/im, headers);
  const refused = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-r', '99999999-', `${BASE}${media.url}.webp`]).toString();
  assert.equal(refused, '416');
  const head = execFileSync('curl', ['-s', '-I', `${BASE}${media.url}.webp`]).toString();
  assert.match(head, /^etag: "[0-9a-f]{64}-160\.webp"/im, head);
});

test('an interrupted upload resumes from the committed offset, re-sending at most the chunk in flight', async () => {
  const bytes = Buffer.concat([FIXTURE, Buffer.alloc(20_000, 7)]);
  let first;
  const aborted = await new Promise((resolve, reject) => {
    const upload = new tus.Upload(bytes, {
      endpoint: `${BASE}/uploads/`,
      headers: { Authorization: `Bearer ${TOKEN}` },
      metadata: { filename: 'big.jpg', filetype: 'image/jpeg' },
      chunkSize: 4096,
      retryDelays: [],
      onChunkComplete(_size, accepted) {
        if (accepted >= 8192 && !first) {
          first = upload.url;
          upload.abort().then(() => resolve(accepted));
        }
      },
      onSuccess() { reject(new Error('should have been aborted')); },
      onError: reject,
    });
    upload.start();
  });
  const head = await fetch(first, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0', authorization: `Bearer ${TOKEN}` } });
  const committed = Number(head.headers.get('upload-offset'));
  assert.ok(committed >= aborted && committed < bytes.length, `${committed} vs ${aborted}`);
  const { patches } = await tusUpload(bytes, { uploadUrl: first, chunkSize: 4096 });
  assert.equal(patches[0], committed, 'the resume starts at the committed offset');
  const resent = patches[0] - aborted;
  assert.ok(resent <= 4096, `at most one chunk re-sent (${resent} bytes)`);
});

test('a wrong offset is 409, a wrong checksum 460, someone else gets 404, and all are JSON', async () => {
  const { url } = await new Promise((resolve, reject) => {
    const upload = new tus.Upload(Buffer.alloc(5000, 1), {
      endpoint: `${BASE}/uploads/`,
      headers: { Authorization: `Bearer ${TOKEN}` },
      metadata: { filename: 'x.png', filetype: 'image/png' },
      uploadSize: 5000,
      chunkSize: 1000,
      retryDelays: [],
      onChunkComplete(_size, accepted) {
        if (accepted === 1000) upload.abort().then(() => resolve({ url: upload.url }));
      },
      onError: reject,
    });
    upload.start();
  });
  const patch = (offset, body, extra = {}, token = TOKEN) => fetch(url, {
    method: 'PATCH',
    headers: { 'tus-resumable': '1.0.0', authorization: `Bearer ${token}`, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), ...extra },
    body,
  });
  const conflict = await patch(0, Buffer.alloc(100, 2));
  assert.equal(conflict.status, 409);
  assert.equal(conflict.headers.get('upload-offset'), '1000');
  assert.equal((await conflict.json()).errors[0].extensions.code, 'CONFLICT');
  const chunk = Buffer.alloc(100, 3);
  const wrong = await patch(1000, chunk, { 'upload-checksum': `sha1 ${createHash('sha1').update('not it').digest('base64')}` });
  assert.equal(wrong.status, 460);
  assert.equal((await wrong.json()).errors[0].extensions.reason, 'CHECKSUM_MISMATCH');
  const right = await patch(1000, chunk, { 'upload-checksum': `sha1 ${createHash('sha1').update(chunk).digest('base64')}` });
  assert.equal(right.status, 204);
  assert.equal(right.headers.get('upload-offset'), '1100');
  const foreign = await patch(1100, chunk, {}, OTHER);
  assert.equal(foreign.status, 404);
  assert.equal((await foreign.json()).errors[0].extensions.code, 'NOT_FOUND');
  const noVersion = await fetch(url, { method: 'HEAD', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(noVersion.status, 412);
});

test('quotas: createUpload and tus creation refuse an oversized file with the documented fields', async () => {
  const body = await gql(
    `mutation($input: CreateUploadInput!) { createUpload(input: $input) { upload { id } } }`,
    { input: { filename: 'huge.jpg', mimeType: 'image/jpeg', sizeBytes: 3_000_000 } },
  );
  const error = body.errors[0];
  assert.equal(error.extensions.code, 'QUOTA_EXCEEDED');
  assert.equal(error.extensions.maxSizeBytes, 2_000_000);
  assert.equal(typeof error.extensions.remainingQuota, 'number');

  const refused = await tusUpload(Buffer.alloc(2_500_000, 1)).then(() => null, (e) => e);
  assert.ok(refused, 'tus-js-client reports the refusal');
  const response = refused.originalResponse;
  assert.equal(response.getStatus(), 413);
  const json = JSON.parse(response.getBody());
  assert.equal(json.errors[0].extensions.code, 'QUOTA_EXCEEDED');
  assert.equal(json.errors[0].extensions.maxSizeBytes, 2_000_000);
});

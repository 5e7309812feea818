// Apollo Client (v4) against a live mobile-bff at $BFF_URL, the way a mobile app talks to it:
// automatic persisted queries sent as GET, through an HTTP cache that revalidates with ETags
// (what URLCache on iOS and OkHttp's Cache on Android do). A warm app open must be one GET with
// the hash only, answered 304 with zero body bytes, and Apollo must still get the data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HOME_FEED = gql(readFileSync(join(root, 'playground', 'queries', 'HomeFeed.graphql'), 'utf8'));

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

/**
 * One HTTP/1.1 exchange with node:http, so the body bytes on the wire (after de-chunking,
 * before Content-Encoding is undone) can be counted exactly. Sends Accept-Encoding like
 * URLSession does.
 */
function wireFetch(url, { method, headers, body }) {
  return new Promise((resolve, reject) => {
    const h = Object.fromEntries(headers);
    h['accept-encoding'] ??= 'br, gzip, deflate';
    if (body != null) h['content-length'] = String(Buffer.byteLength(body));
    const req = httpRequest(url, { method, headers: h }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const wire = Buffer.concat(chunks);
        const encoding = (res.headers['content-encoding'] || '').trim();
        const decode = {
          '': (b) => b,
          identity: (b) => b,
          gzip: gunzipSync,
          br: brotliDecompressSync,
          deflate: inflateSync,
        }[encoding];
        if (!decode) return reject(new Error(`unexpected Content-Encoding ${encoding}`));
        const responseHeaders = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          for (const one of [].concat(v)) responseHeaders.append(k, one);
        }
        resolve({
          status: res.statusCode,
          statusText: res.statusMessage,
          headers: responseHeaders,
          wireBytes: wire.byteLength,
          body: wire.byteLength ? decode(wire).toString('utf8') : '',
        });
      });
    });
    req.on('error', reject);
    if (body != null) req.write(body);
    req.end();
  });
}

/**
 * A fetch with a mobile-style HTTP cache: GET responses with an ETag are remembered per URL;
 * a repeated GET sends If-None-Match, and a 304 is answered to the caller as a 200 carrying the
 * remembered body. Every request that goes on the wire is recorded.
 */
function makeCachingFetch() {
  const store = new Map(); // url -> { etag, body, contentType }
  const log = [];
  async function cachingFetch(input, init = {}) {
    const url = typeof input === 'string' ? input : input.url;
    const method = (init.method || 'GET').toUpperCase();
    const headers = new Headers(init.headers);
    const cached = method === 'GET' ? store.get(url) : undefined;
    if (cached) headers.set('if-none-match', cached.etag);

    const res = await wireFetch(url, { method, headers, body: init.body });
    const body = res.body;
    const entry = {
      method,
      url,
      status: res.status,
      requestHeaders: Object.fromEntries(headers),
      requestBodyBytes: init.body == null ? 0 : Buffer.byteLength(String(init.body)),
      requestBody: init.body == null ? undefined : String(init.body),
      responseHeaders: Object.fromEntries(res.headers),
      responseBodyBytes: res.wireBytes, // on the wire (compressed if Content-Encoding)
      decodedBodyBytes: Buffer.byteLength(body),
      responseBody: body,
    };
    log.push(entry);

    if (res.status === 304 && cached) {
      entry.servedFromCache = true;
      return new Response(cached.body, {
        status: 200,
        statusText: 'OK',
        headers: { 'content-type': cached.contentType, etag: cached.etag },
      });
    }
    const etag = res.headers.get('etag');
    if (method === 'GET' && res.status === 200 && etag) {
      store.set(url, { etag, body, contentType: res.headers.get('content-type') || 'application/json' });
    }
    return new Response(res.status === 304 || res.status === 204 ? null : body, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  }
  return { cachingFetch, log };
}

function describe(entry) {
  return JSON.stringify(
    {
      request: `${entry.method} ${entry.url}`,
      requestHeaders: entry.requestHeaders,
      requestBody: entry.requestBody?.slice(0, 300),
      status: entry.status,
      responseHeaders: entry.responseHeaders,
      responseBody: entry.responseBody.slice(0, 600),
    },
    null,
    2,
  );
}

function params(entry) {
  return new URL(entry.url).searchParams;
}

test('Apollo Client: APQ over GET, then a warm open revalidated with ETag → 304', async (t) => {
  const { BFF_URL, BFF_TOKEN } = process.env;
  assert.ok(BFF_URL, 'BFF_URL is not set: this test needs a running mobile-bff (use tests/clients/run.sh)');
  assert.ok(BFF_TOKEN, 'BFF_TOKEN is not set: this test needs a token for alice (use tests/clients/run.sh)');

  const { cachingFetch, log } = makeCachingFetch();
  const client = new ApolloClient({
    link: createPersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(
      new HttpLink({
        uri: `${BFF_URL.replace(/\/$/, '')}/graphql`,
        fetch: cachingFetch,
        headers: { authorization: `Bearer ${BFF_TOKEN}` },
      }),
    ),
    cache: new InMemoryCache(),
  });
  const run = () =>
    client.query({ query: HOME_FEED, variables: { first: 3 }, fetchPolicy: 'network-only' });

  let hash;
  let firstData;

  await t.test('(a) cold open: GET hash only → PersistedQueryNotFound → POST hash + query → data', async () => {
    const { data } = await run();
    assert.ok(
      !(log.length === 1 && log[0].status === 200),
      'the HomeFeed hash is already registered on this server: the cold-open check needs a fresh ' +
        'data dir (tests/clients/run.sh starts one)',
    );
    assert.equal(log.length, 2, `expected 2 requests, got:\n${log.map(describe).join('\n')}`);
    const [miss, register] = log;

    // 1. GET with only the hash.
    assert.equal(miss.method, 'GET', describe(miss));
    const ext = JSON.parse(params(miss).get('extensions'));
    assert.equal(ext.persistedQuery.version, 1);
    hash = ext.persistedQuery.sha256Hash;
    assert.match(hash, /^[0-9a-f]{64}$/);
    assert.equal(params(miss).has('query'), false, 'the first GET must not carry the query text');
    assert.deepEqual(JSON.parse(params(miss).get('variables')), { first: 3 });
    // Apollo v4 sends Accept: application/graphql-response+json first, so the miss is a 400
    // (it would be 200 with application/json); the body is the same either way.
    assert.match(miss.requestHeaders.accept, /^application\/graphql-response\+json/);
    assert.equal(miss.status, 400, describe(miss));
    const missBody = JSON.parse(miss.responseBody);
    assert.equal(missBody.errors?.[0]?.message, 'PersistedQueryNotFound', describe(miss));
    assert.equal(missBody.errors[0].extensions?.code, 'PERSISTED_QUERY_NOT_FOUND', describe(miss));

    // 2. Apollo's PersistedQueryLink retries with POST, hash + full query text.
    assert.equal(register.method, 'POST', describe(register));
    assert.equal(register.url, miss.url.split('?')[0]);
    const sent = JSON.parse(register.requestBody);
    assert.equal(sent.extensions.persistedQuery.sha256Hash, hash);
    assert.equal(typeof sent.query, 'string');
    assert.equal(sha256(sent.query), hash, 'the hash is the SHA-256 of the query text sent');
    assert.equal(sent.operationName, 'HomeFeed');
    assert.deepEqual(sent.variables, { first: 3 });
    assert.equal(register.status, 200, describe(register));
    assert.match(register.responseHeaders['cache-control'] ?? '', /no-store/, 'POST responses are no-store');

    assert.equal(data.feed.edges.length, 3);
    assert.ok(data.viewer?.handle, 'viewer is set (the token was accepted)');
    firstData = data;
  });

  let secondData;
  await t.test('(b) second open: GET with the hash only → 200 with data, ETag and Cache-Control', async () => {
    assert.ok(hash, 'step (a) must have run');
    const before = log.length;
    const { data } = await run();
    assert.equal(log.length, before + 1, `expected 1 request, got:\n${log.slice(before).map(describe).join('\n')}`);
    const hit = log[before];
    assert.equal(hit.method, 'GET', describe(hit));
    assert.equal(params(hit).has('query'), false, 'hash only: no query text in the URL');
    assert.equal(JSON.parse(params(hit).get('extensions')).persistedQuery.sha256Hash, hash);
    assert.equal(hit.requestHeaders['if-none-match'], undefined, 'nothing cached yet');
    assert.equal(hit.status, 200, describe(hit));
    assert.ok(JSON.parse(hit.responseBody).data, describe(hit));
    assert.match(hit.responseHeaders.etag ?? '', /^"[^"]+"$/, `strong ETag expected\n${describe(hit)}`);
    assert.ok(hit.responseHeaders['cache-control'], `Cache-Control expected\n${describe(hit)}`);
    assert.match(hit.responseHeaders['cache-control'], /private/, 'viewer/feed make it private');
    assert.equal(data.feed.edges.length, 3);
    assert.deepEqual(data, firstData);
    secondData = data;
  });

  await t.test('(c) warm open: GET + If-None-Match → 304, zero body bytes, same data for Apollo', async () => {
    assert.ok(secondData, 'step (b) must have run');
    const before = log.length;
    const etag = log[before - 1].responseHeaders.etag;
    const { data } = await run();
    assert.equal(log.length, before + 1, `expected 1 request, got:\n${log.slice(before).map(describe).join('\n')}`);
    const warm = log[before];
    assert.equal(warm.method, 'GET', describe(warm));
    assert.equal(params(warm).has('query'), false, 'hash only: no query text in the URL');
    assert.equal(warm.requestHeaders['if-none-match'], etag);
    assert.equal(warm.status, 304, describe(warm));
    assert.equal(warm.responseBodyBytes, 0, 'a 304 has no body');
    // RFC 9110 §15.4.5: a 304 carries the ETag and Cache-Control a 200 would have had.
    assert.equal(warm.responseHeaders.etag, etag, describe(warm));
    assert.equal(warm.responseHeaders['cache-control'], log[before - 1].responseHeaders['cache-control'], describe(warm));
    assert.ok(warm.servedFromCache);
    assert.deepEqual(data, secondData);
  });

  console.log(
    [
      '',
      'warm-open figures (Apollo Client + APQ over GET + ETag cache), HomeFeed first: 3:',
      '  #  method  status  url-len  req-body-B  resp-body-B (wire/decoded)  note',
      ...log.map((e, i) =>
        `  ${String(i + 1).padEnd(2)} ${e.method.padEnd(7)} ${String(e.status).padEnd(7)} ${String(e.url.length).padStart(7)}  ${String(e.requestBodyBytes).padStart(10)}  ${`${e.responseBodyBytes}/${e.decodedBodyBytes}`.padStart(27)}  ${
          [
            i === 0 ? 'cold: hash only → not found' : '',
            i === 1 ? 'cold: register hash + text' : '',
            e.method === 'GET' && e.status === 200 ? 'hash only → data' : '',
            e.status === 304 ? 'warm: If-None-Match → 304, body from cache' : '',
            e.responseHeaders['content-encoding'] ? `(${e.responseHeaders['content-encoding']})` : '',
          ]
            .filter(Boolean)
            .join(' ')
        }`,
      ),
      '  (requests send Accept-Encoding: br, gzip, deflate; resp-body-B is after de-chunking)',
    ].join('\n'),
  );
});

// Real-time checks with third-party clients (graphql-ws, graphql-sse) against a live server.
// The check: a client goes away for 100 messages, comes back with its last seq and
// gets exactly those 100, in order — over WebSocket, over SSE (Last-Event-ID), and over
// long-poll. Also: disconnect mid-stream, auth failure, a revoked device's socket closing.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createClient as createWsClient } from 'graphql-ws';
import { createClient as createSseClient } from 'graphql-sse';
import WebSocket from 'ws';

const BASE = process.env.BFF_URL;
const ALICE = process.env.BFF_TOKEN_ALICE;
const BOB = process.env.BFF_TOKEN_BOB;
const WS_URL = BASE.replace(/^http/, 'ws') + '/graphql/ws';
const SSE_URL = BASE + '/graphql/sse';

async function gql(query, variables, token) {
  const res = await fetch(BASE + '/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

async function data(query, variables, token) {
  const body = await gql(query, variables, token);
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

let conversationId;
let run = 0;

async function send(n, label) {
  run += 1;
  const bodies = [];
  for (let i = 0; i < n; i++) {
    const body = `${label} ${i}`;
    await data(
      `mutation($c: ID!, $k: String!, $b: String!) { sendMessage(input: {conversationId: $c, clientMessageId: $k, body: $b}) { message { seq } } }`,
      { c: conversationId, k: `rt-${label}-${run}-${i}-${Date.now()}`, b: body },
      ALICE,
    );
    bodies.push(body);
  }
  return bodies;
}

function wsClient(token, extra = {}) {
  return createWsClient({
    url: WS_URL,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
    on: { closed: (e) => process.env.RT_DEBUG && console.log('closed', e.code, e.reason) },
    ...extra,
  });
}

const EVENTS = `subscription($after: Int) { events(afterSeq: $after) { seq kind message { body seq sender { handle } } } }`;

/** Collects `events` results into `out` until `until(out)`; resolves with the items. */
function collect(client, variables, until, out = []) {
  let done = false;
  return new Promise((resolve, reject) => {
    const dispose = client.subscribe(
      { query: EVENTS, variables },
      {
        next: (result) => {
          if (done) return;
          if (result.errors) return reject(new Error(JSON.stringify(result.errors)));
          out.push(result.data.events);
          if (until(out)) {
            done = true;
            dispose();
            resolve(out);
          }
        },
        error: reject,
        complete: () => resolve(out),
      },
    );
  });
}

/** The value of the `/metrics` series `name` (0 when absent). */
async function metric(name) {
  const text = await (await fetch(BASE + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

/** Waits (bounded: 10 s) until the series `name` satisfies `ok`: a condition, not a sleep. */
async function waitForMetric(name, ok) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const value = await metric(name);
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${name} never got there (last ${value})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const JOINS = 'bff_live_feed_joins_total';

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms))),
  ]);
}

before(async () => {
  const inbox = await data(
    `{ conversations(first: 20) { edges { node { id kind members { user { handle } } } } } }`,
    {},
    ALICE,
  );
  const direct = inbox.conversations.edges.find(
    (e) => e.node.kind === 'DIRECT' && e.node.members.some((m) => m.user.handle === 'bob'),
  );
  assert.ok(direct, 'alice and bob share a conversation');
  conversationId = direct.node.id;
});

/** Bob's newest event seq: subscribe live, cause one event, read its seq. */
async function currentSeq() {
  const client = wsClient(BOB);
  const joins = await metric(JOINS);
  const got = collect(client, {}, (items) => items.length >= 1);
  await waitForMetric(JOINS, (n) => n > joins); // live-only: it sees what is sent once joined
  await send(1, 'marker');
  const [event] = await withTimeout(got, 10000, 'marker event');
  await client.dispose();
  return event.seq;
}

test('graphql-ws: away for 100 messages, back with the last seq, gets exactly those 100 in order', async () => {
  const last = await currentSeq();
  const bodies = await send(100, 'away');
  const client = wsClient(BOB);
  const items = await withTimeout(collect(client, { after: last }, (xs) => xs.length >= 100), 30000, 'replay');
  assert.deepEqual(items.map((e) => e.seq), bodies.map((_, i) => last + 1 + i));
  assert.deepEqual(items.map((e) => e.message.body), bodies);
  assert.ok(items.every((e) => e.kind === 'MESSAGE_ADDED' && e.message.sender.handle === 'alice'));
  await client.dispose();
  // Nothing more arrives than what is sent next: live continues right after the replay.
  const live = wsClient(BOB);
  const joins = await metric(JOINS);
  const more = collect(live, { after: last + 100 }, (xs) => xs.length >= 1);
  await waitForMetric(JOINS, (n) => n > joins);
  await send(1, 'live');
  const [next] = await withTimeout(more, 10000, 'live event');
  assert.equal(next.seq, last + 101);
  await live.dispose();
});

test('graphql-ws: disconnect mid-stream, reconnect with afterSeq: no gap, no duplicate', async () => {
  const last = await currentSeq();
  const client = wsClient(BOB);
  const firstPart = [];
  const cut = collect(client, { after: last }, (xs) => xs.length >= 30, firstPart);
  const sending = send(100, 'flow');
  await withTimeout(cut, 30000, 'first 30');
  client.terminate(); // the tunnel
  const bodies = await sending;
  const resumeFrom = firstPart[firstPart.length - 1].seq;
  const again = wsClient(BOB);
  const rest = await withTimeout(
    collect(again, { after: resumeFrom }, (xs) => xs[xs.length - 1]?.seq >= last + 100),
    30000,
    'rest',
  );
  await again.dispose();
  const all = [...firstPart, ...rest];
  assert.deepEqual(all.map((e) => e.seq), bodies.map((_, i) => last + 1 + i), JSON.stringify(all.slice(-3)));
  assert.deepEqual(all.map((e) => e.message.body), bodies);
});

test('graphql-ws: messageAdded replays one conversation after a message seq', async () => {
  const head = await data(`query($id: ID!) { conversation(id: $id) { lastSeq } }`, { id: conversationId }, BOB);
  const from = head.conversation.lastSeq;
  const bodies = await send(5, 'typed');
  const client = wsClient(BOB);
  const got = [];
  await withTimeout(
    new Promise((resolve, reject) => {
      const dispose = client.subscribe(
        {
          query: `subscription($c: ID!, $a: Int) { messageAdded(conversationId: $c, afterSeq: $a) { seq body } }`,
          variables: { c: conversationId, a: from },
        },
        {
          next: (r) => {
            if (r.errors) return reject(new Error(JSON.stringify(r.errors)));
            got.push(r.data.messageAdded);
            if (got.length === 5) {
              dispose();
              resolve();
            }
          },
          error: reject,
          complete: resolve,
        },
      );
    }),
    10000,
    'messageAdded',
  );
  await client.dispose();
  assert.deepEqual(got.map((m) => m.seq), [1, 2, 3, 4, 5].map((i) => from + i));
  assert.deepEqual(got.map((m) => m.body), bodies);
});

test('graphql-ws: a bad token is refused with 4401', async () => {
  let code;
  const client = wsClient('not-a-token', { on: { closed: (event) => (code = event.code) } });
  await assert.rejects(collect(client, {}, () => true));
  assert.equal(code, 4401);
  await client.dispose();
});

test('graphql-ws: a position older than retention (or unknown) gets RESYNC_REQUIRED', async () => {
  const client = wsClient(BOB);
  const result = await withTimeout(
    new Promise((resolve, reject) => {
      client.subscribe(
        { query: EVENTS, variables: { after: 1_000_000_000 } },
        { next: resolve, error: reject, complete: () => reject(new Error('completed without a result')) },
      );
    }),
    10000,
    'resync',
  );
  assert.equal(result.errors[0].extensions.code, 'RESYNC_REQUIRED');
  assert.equal(typeof result.errors[0].extensions.latestSeq, 'number');
  await client.dispose();
});

test('graphql-ws: signing the device out closes its socket with 4401', async () => {
  const handle = `rt_${Date.now() % 1e9}`;
  const reg = await data(
    `mutation($i: RegisterInput!) { register(input: $i) { accessToken } }`,
    {
      i: {
        email: `${handle}@example.com`,
        password: 'correct horse battery',
        handle,
        displayName: 'Realtime',
        device: { clientDeviceId: crypto.randomUUID(), platform: 'IOS' },
      },
    },
  );
  const token = reg.register.accessToken;
  const joins = await metric(JOINS);
  const closed = new Promise((resolve) => {
    const client = wsClient(token, { on: { closed: (event) => resolve(event.code) } });
    client.subscribe({ query: EVENTS, variables: {} }, { next: () => {}, error: () => {}, complete: () => {} });
  });
  await waitForMetric(JOINS, (n) => n > joins); // the socket is signed in and subscribed
  await data(`mutation { logout }`, {}, token);
  assert.equal(await withTimeout(closed, 5000, 'socket close after logout'), 4401);
});

function sseClient(token, lastEventId) {
  return createSseClient({
    url: SSE_URL,
    retryAttempts: 0,
    headers: () => ({
      authorization: `Bearer ${token}`,
      ...(lastEventId() !== undefined ? { 'last-event-id': String(lastEventId()) } : {}),
    }),
  });
}

test('graphql-sse: Last-Event-ID resumes after the last seq: exactly the 100 missed', async () => {
  const last = await currentSeq();
  let lastId = last;
  const bodies = await send(100, 'sse');
  const client = sseClient(BOB, () => lastId);
  const items = [];
  await withTimeout(
    new Promise((resolve, reject) => {
      // No afterSeq argument: the Last-Event-ID header says where to resume.
      const dispose = client.subscribe(
        { query: `subscription { events { seq message { body } } }` },
        {
          next: (r) => {
            if (r.errors) return reject(new Error(JSON.stringify(r.errors)));
            items.push(r.data.events);
            lastId = r.data.events.seq;
            if (items.length === 100) {
              dispose();
              resolve();
            }
          },
          error: reject,
          complete: resolve,
        },
      );
    }),
    30000,
    'sse replay',
  );
  client.dispose();
  assert.deepEqual(items.map((e) => e.seq), bodies.map((_, i) => last + 1 + i));
  assert.deepEqual(items.map((e) => e.message.body), bodies);
});

test('graphql-sse: a bad token is a 401', async () => {
  const client = sseClient('nope', () => undefined);
  await assert.rejects(
    new Promise((resolve, reject) =>
      client.subscribe({ query: `subscription { events { seq } }` }, { next: resolve, error: reject, complete: resolve }),
    ),
    (err) => err?.response?.status === 401,
  );
  client.dispose();
});

test('long-poll: pollEvents returns the 100 missed in pages, then waits for the next', async () => {
  const last = await currentSeq();
  const bodies = await send(100, 'poll');
  const poll = `query($a: Int!, $w: Int) { pollEvents(afterSeq: $a, waitSeconds: $w) { nextAfterSeq hasMore events { seq message { body } } } }`;
  const got = [];
  let after = last;
  for (;;) {
    const { pollEvents } = await data(poll, { a: after, w: 0 }, BOB);
    got.push(...pollEvents.events);
    after = pollEvents.nextAfterSeq;
    if (!pollEvents.hasMore) break;
  }
  assert.deepEqual(got.map((e) => e.seq), bodies.map((_, i) => last + 1 + i));
  assert.deepEqual(got.map((e) => e.message.body), bodies);
  // A waiting poll returns as soon as something happens.
  const waiting = data(poll, { a: after, w: 20 }, BOB);
  await waitForMetric('bff_live_polls_waiting', (n) => n >= 1);
  await send(1, 'wake');
  const { pollEvents } = await withTimeout(waiting, 15000, 'long-poll wake');
  assert.equal(pollEvents.events.length, 1);
  assert.equal(pollEvents.events[0].seq, after + 1);
});

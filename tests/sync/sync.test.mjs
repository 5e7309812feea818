// Offline-first sync checked with a real offline database: RxDB (memory storage) and its
// GraphQL replication plugin against a live mobile-bff, with the names and shapes of
// docs/sync-protocol.md. Two devices of one user and a third user sharing a note edit
// offline, reconnect and converge; deletes propagate; live changes arrive over the
// graphql-ws stream; conflicts are resolved by each strategy and visible through the
// conflict API.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createRxDatabase } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { replicateGraphQL } from 'rxdb/plugins/replication-graphql';

const BASE = process.env.BFF_URL;
const TOKENS = { alice: process.env.BFF_TOKEN_ALICE, bob: process.env.BFF_TOKEN_BOB, carol: process.env.BFF_TOKEN_CAROL };
const FIELDS = 'id title body done position tags updatedAt deleted owner collaborators hlc serverRevision';
const CHECKPOINT = 'checkpoint { id updatedAt seq floor }';

const schema = {
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 36 },
    title: { type: 'string' },
    body: { type: 'string' },
    done: { type: 'boolean' },
    position: { type: 'number' },
    tags: { type: 'array', items: { type: 'string' } },
    updatedAt: { type: 'number' },
    owner: { type: 'string' },
    collaborators: { type: 'array', items: { type: 'string' } },
    hlc: { type: ['string', 'null'] },
    serverRevision: { type: 'number' },
  },
  required: ['id', 'title', 'body', 'done', 'position', 'tags'],
};

async function gql(query, variables, token) {
  const res = await fetch(BASE + '/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

/** The server's view of a user's notes (a full pull from a null checkpoint). */
async function serverNotes(token) {
  const out = new Map();
  let cp = null;
  for (;;) {
    const { pullNotes } = await gql(
      `query($cp: NoteCheckpointInput) { pullNotes(checkpoint: $cp, limit: 100) { documents { ${FIELDS} } ${CHECKPOINT} } }`,
      { cp },
      token,
    );
    if (pullNotes.documents.length === 0) return out;
    for (const d of pullNotes.documents) out.set(d.id, d);
    cp = pullNotes.checkpoint;
  }
}

async function eventually(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} never happened: ${last?.message ?? last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const devices = [];

/** One device: its own RxDB database, replicating as `user` while online. */
async function device(name, user) {
  const db = await createRxDatabase({ name: `${name}-${randomUUID()}`, storage: getRxStorageMemory(), multiInstance: false });
  await db.addCollections({ notes: { schema } });
  const dev = { name, user, db, notes: db.notes, replication: null };
  dev.online = async () => {
    const token = TOKENS[user];
    dev.replication = replicateGraphQL({
      collection: db.notes,
      replicationIdentifier: `mobile-bff-notes-${name}`,
      // One socket per device (the plugin shares sockets by URL).
      url: { http: BASE + '/graphql', ws: BASE.replace(/^http/, 'ws') + `/graphql/ws?device=${name}` },
      headers: { Authorization: `Bearer ${token}` },
      deletedField: 'deleted',
      live: true,
      retryTime: 200,
      waitForLeadership: false,
      pull: {
        batchSize: 20,
        includeWsHeaders: true,
        queryBuilder: (checkpoint, limit) => ({
          query: `query($cp: NoteCheckpointInput, $limit: Int!) { pullNotes(checkpoint: $cp, limit: $limit) { documents { ${FIELDS} } ${CHECKPOINT} } }`,
          operationName: null,
          variables: { cp: checkpoint ?? null, limit },
        }),
        streamQueryBuilder: () => ({
          query: `subscription { streamNotes { documents { ${FIELDS} } ${CHECKPOINT} } }`,
          operationName: null,
          variables: {},
        }),
      },
      push: {
        batchSize: 10,
        queryBuilder: (rows) => ({
          query: `mutation($rows: [NotePushRow!]!) { pushNotes(rows: $rows) { ${FIELDS} } }`,
          operationName: null,
          variables: { rows },
        }),
      },
    });
    dev.errors = [];
    dev.replication.error$.subscribe((e) => dev.errors.push(e));
    await dev.replication.awaitInitialReplication();
  };
  dev.offline = async () => {
    await dev.replication.cancel();
    dev.replication = null;
  };
  dev.sync = async () => {
    await dev.replication.awaitInSync();
  };
  dev.get = async (id) => (await db.notes.findOne(id).exec())?.toJSON();
  dev.all = async () => {
    const docs = await db.notes.find().exec();
    return new Map(docs.map((d) => [d.id, d.toJSON()]));
  };
  devices.push(dev);
  return dev;
}

after(async () => {
  for (const dev of devices) {
    if (dev.replication) await dev.replication.cancel();
    await dev.db.close();
  }
});

function note(title, extra = {}) {
  return { id: randomUUID(), title, body: '', done: false, position: 1, tags: [], ...extra };
}

/** The user-visible content of a document. */
const content = (d) => d && { id: d.id, title: d.title, body: d.body, done: d.done, position: d.position, tags: d.tags };

async function converged(what, token, devs) {
  return eventually(what, async () => {
    const server = await serverNotes(token);
    const live = [...server.values()].filter((d) => !d.deleted).map(content).sort((a, b) => a.id.localeCompare(b.id));
    for (const dev of devs) {
      const local = [...(await dev.all()).values()].map(content).sort((a, b) => a.id.localeCompare(b.id));
      assert.deepEqual(local, live, `${dev.name} holds the server's notes`);
    }
    return server;
  });
}

const SEPARATOR = '\n\n=== other version ===\n\n';

test('two devices edit offline, reconnect and converge; deletes propagate', async () => {
  const phone = await device('phone', 'alice');
  const tablet = await device('tablet', 'alice');
  await phone.online();
  await tablet.online();
  const groceries = note('groceries', { body: 'milk' });
  const old = note('old list');
  await phone.notes.insert(groceries);
  await phone.notes.insert(old);
  await phone.sync();
  await eventually('the tablet gets the notes live', async () => assert.ok(await tablet.get(old.id)));

  await phone.offline();
  await tablet.offline();
  // Offline on both: different fields of one note, a delete, a creation.
  await (await phone.notes.findOne(groceries.id).exec()).incrementalPatch({ title: 'groceries for sunday' });
  await (await tablet.notes.findOne(groceries.id).exec()).incrementalPatch({ done: true, tags: ['home'] });
  await (await tablet.notes.findOne(old.id).exec()).remove();
  const created = note('made offline on the phone');
  await phone.notes.insert(created);

  await phone.online();
  await phone.sync();
  await tablet.online();
  await tablet.sync();
  const server = await converged('convergence', TOKENS.alice, [phone, tablet]);
  const merged = server.get(groceries.id);
  assert.equal(merged.title, 'groceries for sunday', "the phone's title");
  assert.equal(merged.done, true, "the tablet's done");
  assert.deepEqual(merged.tags, ['home']);
  assert.equal(server.get(old.id).deleted, true, 'the delete reached the server as a tombstone');
  assert.equal(await phone.get(old.id), undefined, 'and the phone');
  assert.ok(await tablet.get(created.id), 'the creation reached the tablet');
  assert.deepEqual([...phone.errors, ...tablet.errors].filter((e) => e.code !== 'RC_STREAM'), []);
});

test('live changes arrive over the stream without a pull', async () => {
  const phone = await device('phone-live', 'alice');
  const tablet = await device('tablet-live', 'alice');
  await phone.online();
  await tablet.online();
  const live = note('typed on the phone');
  await phone.notes.insert(live);
  await phone.sync();
  // The plugin pulls only at start, on a stream event or after a reconnect: this arrives
  // because streamNotes pushed it.
  await eventually('the tablet gets it', async () => assert.equal((await tablet.get(live.id))?.title, live.title), 8000);
  await (await phone.notes.findOne(live.id).exec()).incrementalPatch({ title: 'edited live' });
  await eventually('the edit arrives', async () => assert.equal((await tablet.get(live.id))?.title, 'edited live'), 8000);
});

test('a note shared with a third user: conflicts by each strategy, visible through the conflict API', async () => {
  const phone = await device('phone-share', 'alice');
  const laptop = await device('laptop-bob', 'bob');
  await phone.online();
  await laptop.online();
  const { viewer: bob } = await gql('{ viewer { id } }', {}, TOKENS.bob);
  const plan = note('trip plan', { body: 'day 1: museum', position: 1 });
  await phone.notes.insert(plan);
  await phone.sync();
  await gql('mutation($id: String!, $u: ID!) { shareNote(id: $id, userId: $u) { id } }', { id: plan.id, u: bob.id }, TOKENS.alice);
  await eventually('bob gets the shared note', async () => assert.ok(await laptop.get(plan.id)));
  await eventually('alice sees bob as collaborator', async () => assert.deepEqual((await phone.get(plan.id)).collaborators, [bob.id]));

  await phone.offline();
  await laptop.offline();
  // Same fields on both sides: title (last writer wins), body (keep both), position (server wins).
  await (await phone.notes.findOne(plan.id).exec()).incrementalPatch({ title: 'alice: trip', body: 'day 1: beach', position: 2 });
  await (await laptop.notes.findOne(plan.id).exec()).incrementalPatch({ title: 'bob: trip', body: 'day 1: hike', position: 3 });
  await phone.online();
  await phone.sync();
  await laptop.online();
  await laptop.sync();
  await phone.sync();
  const server = await converged('alice and bob converge', TOKENS.alice, [phone]);
  await converged('bob converges', TOKENS.bob, [laptop]);
  const final = server.get(plan.id);
  assert.equal(final.title, 'bob: trip', 'last writer (bob, later) wins the title');
  assert.equal(final.body, `day 1: beach${SEPARATOR}day 1: hike`, 'both bodies kept');
  assert.equal(final.position, 2, 'position: the server (first arrival) wins');

  const { syncConflicts } = await gql(
    '{ syncConflicts(first: 20) { edges { node { id noteId field strategy winner serverValue clientValue user } } } }',
    {},
    TOKENS.alice,
  );
  const mine = syncConflicts.edges.map((e) => e.node).filter((c) => c.noteId === plan.id);
  const byField = Object.fromEntries(mine.map((c) => [c.field, c]));
  assert.equal(byField.TITLE.strategy, 'LAST_WRITER_WINS');
  assert.equal(byField.TITLE.winner, 'CLIENT');
  assert.equal(byField.TITLE.serverValue, 'alice: trip');
  assert.equal(byField.TITLE.clientValue, 'bob: trip');
  assert.equal(byField.BODY.strategy, 'KEEP_BOTH');
  assert.equal(byField.POSITION.strategy, 'SERVER_WINS');
  assert.equal(byField.POSITION.winner, 'SERVER');
  assert.equal(byField.TITLE.user, bob.id, 'the push that met the conflict was bob’s');

  // Alice takes her title back; both devices follow.
  await gql('mutation($id: ID!) { resolveSyncConflict(id: $id, action: TAKE_SERVER) { dismissed } }', { id: byField.TITLE.id }, TOKENS.alice);
  await eventually('alice’s title everywhere', async () => {
    assert.equal((await phone.get(plan.id)).title, 'alice: trip');
    assert.equal((await laptop.get(plan.id)).title, 'alice: trip');
  });

  // Unsharing reads as a deletion on bob's device.
  await gql('mutation($id: String!, $u: ID!) { unshareNote(id: $id, userId: $u) { id } }', { id: plan.id, u: bob.id }, TOKENS.alice);
  await eventually('gone from bob’s laptop', async () => assert.equal(await laptop.get(plan.id), undefined));
  assert.ok(await phone.get(plan.id), 'still on alice’s phone');
});

// The stamp helper of docs/sync-protocol.md: NTP64 time and a per-install hex clock id.
function hlcClock() {
  const clockId = randomUUID().replaceAll('-', '').slice(0, 16);
  return () => {
    const ms = BigInt(Date.now());
    const ntp = ((ms / 1000n) << 32n) + (((ms % 1000n) << 32n) / 1000n);
    return `${ntp}/${clockId}`;
  };
}

test('last-writer-wins follows the edit clock: the later edit wins though it arrives first', async () => {
  const phone = await device('phone-hlc', 'alice');
  const tablet = await device('tablet-hlc', 'alice');
  const [phoneNow, tabletNow] = [hlcClock(), hlcClock()];
  await phone.online();
  await tablet.online();
  const memo = note('memo');
  await phone.notes.insert(memo);
  await phone.sync();
  await eventually('the tablet has it', async () => assert.ok(await tablet.get(memo.id)));
  await phone.offline();
  await tablet.offline();
  await (await phone.notes.findOne(memo.id).exec()).incrementalPatch({ title: 'phone, earlier', hlc: phoneNow() });
  await new Promise((r) => setTimeout(r, 50));
  await (await tablet.notes.findOne(memo.id).exec()).incrementalPatch({ title: 'tablet, later', hlc: tabletNow() });
  await tablet.online();
  await tablet.sync();
  await phone.online();
  await phone.sync();
  const server = await converged('convergence', TOKENS.alice, [phone, tablet]);
  assert.equal(server.get(memo.id).title, 'tablet, later');
});

test('someone else’s notes are refused and never pulled', async () => {
  const phone = await device('phone-carol', 'carol');
  await phone.online();
  const secret = note('alice only');
  await gql('mutation($rows: [NotePushRow!]!) { syncNotes(rows: $rows) { status } }', { rows: [{ newDocumentState: secret }] }, TOKENS.alice);
  // Carol writes a note with the same id: refused, and her client gets a tombstone back.
  await phone.notes.insert({ ...secret, title: 'carol was here' });
  await phone.sync();
  await eventually('carol’s copy is dropped', async () => assert.equal(await phone.get(secret.id), undefined));
  const alice = await serverNotes(TOKENS.alice);
  assert.equal(alice.get(secret.id).title, 'alice only');
  assert.equal((await serverNotes(TOKENS.carol)).has(secret.id), false);
});

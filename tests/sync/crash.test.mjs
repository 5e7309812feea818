// kill -9 of the server in the middle of a push batch: RxDB's outbox retries against the
// restarted server (same database) and every row ends applied exactly once, nothing lost.
import { test, after } from 'node:test';
// CRASH_TEST_BINARY: the mobile-bff binary (run.sh sets it).
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import { createRxDatabase } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { replicateGraphQL } from 'rxdb/plugins/replication-graphql';

const BIN = process.env.CRASH_TEST_BINARY;
const NOTES = 120;
const FIELDS = 'id title body done position tags updatedAt deleted serverRevision';

const dir = mkdtempSync(join(tmpdir(), 'bff-crash-'));
const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
const BASE = `http://127.0.0.1:${port}`;
const env = {
  ...process.env,
  BFF_DATA_DIR: dir,
  BFF_DATABASE_URL: `sqlite://${dir}/bff.db?mode=rwc`,
  BFF_LISTEN: `127.0.0.1:${port}`,
  BFF_LOG: 'warn',
  BFF_RATE_LIMITS__ENABLED: 'false',
};
let server;

async function start(args = []) {
  server = spawn(BIN, ['serve', ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 60000;
  for (;;) {
    try {
      if ((await fetch(BASE + '/readyz')).ok) return;
    } catch {}
    if (Date.now() > deadline) throw new Error('server not ready');
    await new Promise((r) => setTimeout(r, 200));
  }
}

after(() => {
  server?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

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

async function serverNotes(token) {
  const out = new Map();
  let cp = null;
  for (;;) {
    const { pullNotes } = await gql(
      `query($cp: NoteCheckpointInput) { pullNotes(checkpoint: $cp, limit: 100) { documents { ${FIELDS} } checkpoint { id updatedAt seq floor } } }`,
      { cp },
      token,
    );
    if (pullNotes.documents.length === 0) return out;
    for (const d of pullNotes.documents) out.set(d.id, d);
    cp = pullNotes.checkpoint;
  }
}

test('kill -9 mid push: the client retries, no row lost or applied twice', async () => {
  await start(['--seed', '--users', '2']);
  const token = execFileSync(BIN, ['token', '--user', 'alice'], { env }).toString().trim().split('\n').pop();
  const db = await createRxDatabase({ name: `crash-${randomUUID()}`, storage: getRxStorageMemory(), multiInstance: false });
  await db.addCollections({
    notes: {
      schema: {
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
          serverRevision: { type: 'number' },
        },
        required: ['id', 'title', 'body'],
      },
    },
  });
  let pushes = 0;
  let killedAt = null;
  let armed = false;
  const replicate = () =>
    replicateGraphQL({
      collection: db.notes,
      replicationIdentifier: 'crash',
      url: { http: BASE + '/graphql' },
      headers: { Authorization: `Bearer ${token}` },
      deletedField: 'deleted',
      live: true,
      retryTime: 300,
      waitForLeadership: false,
      fetch: async (request) => {
        const body = await request.clone().text();
        if (armed && body.includes('pushNotes') && ++pushes === 4 && killedAt === null) {
          // Send the 4th batch, then kill the server while it applies it.
          const pending = fetch(request);
          await new Promise((r) => setTimeout(r, 8));
          killedAt = Date.now();
          server.kill('SIGKILL');
          return pending;
        }
        return fetch(request);
      },
      pull: {
        batchSize: 50,
        queryBuilder: (checkpoint, limit) => ({
          query: `query($cp: NoteCheckpointInput, $limit: Int!) { pullNotes(checkpoint: $cp, limit: $limit) { documents { ${FIELDS} } checkpoint { id updatedAt seq floor } } }`,
          operationName: null,
          variables: { cp: checkpoint ?? null, limit },
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
  // Created offline, then edited once each: every note should end at revision 2.
  const docs = Array.from({ length: NOTES }, (_, i) => ({ id: randomUUID(), title: `note ${i}`, body: '', done: false, position: i, tags: [] }));
  await db.notes.bulkInsert(docs);
  let replication = replicate();
  await replication.awaitInSync();
  await replication.cancel();
  for (const doc of await db.notes.find().exec()) {
    await doc.incrementalPatch({ body: `edited ${doc.title}` });
  }
  armed = true;
  replication = replicate();
  await new Promise((resolve, reject) => {
    const timeout = setTimeout(() => reject(new Error('the 4th push never happened')), 20000);
    const wait = setInterval(() => {
      if (killedAt !== null) {
        clearInterval(wait);
        clearTimeout(timeout);
        resolve();
      }
    }, 5);
  });
  if (server.exitCode === null && server.signalCode === null) await new Promise((r) => server.once('exit', r));
  // What the killed server had committed: part of the edits, not all.
  const committed = execFileSync('python3', ['-c', `import sqlite3;c=sqlite3.connect("${dir}/bff.db");print(c.execute("select count(*) from notes where revision=2").fetchone()[0])`])
    .toString()
    .trim();
  console.log(`killed during push #4: ${committed} of ${NOTES} edits were committed`);
  assert.ok(Number(committed) < NOTES, 'the kill came before the last batch');
  await start();
  await replication.awaitInSync();
  await replication.cancel();

  const stored = await serverNotes(token);
  assert.equal(stored.size, NOTES, 'no note lost, none doubled');
  for (const doc of await db.notes.find().exec()) {
    const row = stored.get(doc.id);
    assert.equal(row.body, `edited ${doc.title}`, 'every edit arrived');
    assert.equal(row.serverRevision, 2, `${doc.id}: created once, edited once`);
  }
  await db.close();
});

// The schema gate on deliberately changed schemas (copies in a temp folder): it fails on a
// breaking change, passes additions and deprecations, passes a removal whose sunset has passed
// and fails one whose sunset has not, and fails when a supported app's persisted operation no
// longer validates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const schema = readFileSync(join(root, 'schema.graphql'), 'utf8');

function gate(oldSdl, newSdl, { manifests, today } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'schema-gate-'));
  writeFileSync(join(dir, 'old.graphql'), oldSdl);
  writeFileSync(join(dir, 'new.graphql'), newSdl);
  const manifestDir = join(dir, 'manifests');
  mkdirSync(manifestDir);
  if (manifests) {
    for (const [name, body] of Object.entries(manifests)) writeFileSync(join(manifestDir, name), JSON.stringify(body));
  } else {
    cpSync(join(root, 'manifests'), manifestDir, { recursive: true });
  }
  const run = spawnSync('bash', [join(here, 'gate.sh'), join(dir, 'old.graphql'), join(dir, 'new.graphql'), manifestDir], {
    encoding: 'utf8',
    env: { ...process.env, SCHEMA_GATE_TODAY: today ?? '2026-12-04' },
  });
  return { ok: run.status === 0, output: run.stdout + run.stderr };
}

// A small schema whose `legacy` field is deprecated with a sunset date.
const base = `type Query {
  user: User
}

type User {
  id: ID!
  name: String!
  "Old."
  legacy: String @deprecated(reason: "Use \`name\`. (deprecated 2026-01-01, sunset 2026-06-30)")
  nickname: String @deprecated(reason: "Use \`name\`.")
}
`;

test('the real schema passes against itself, with the supported manifests', () => {
  const result = gate(schema, schema);
  assert.ok(result.ok, result.output);
  assert.match(result.output, /All documents are valid/);
});

test('removing a field that was never deprecated fails', () => {
  const broken = schema.replace(/\t"""\n\t[^\n]*\n\t"""\n\thandle: String!\n/, '');
  assert.ok(broken !== schema, 'the test must actually remove a field');
  const result = gate(schema, broken, { manifests: {} });
  assert.equal(result.ok, false, result.output);
  assert.match(result.output, /removed/i);
});

test('changing a field type fails; adding a field and deprecating one pass', () => {
  assert.equal(gate(base, base.replace('name: String!', 'name: Int!'), { manifests: {} }).ok, false);
  const added = base.replace('  id: ID!\n', '  id: ID!\n  avatar: String\n');
  assert.ok(gate(base, added, { manifests: {} }).ok);
  const deprecated = base.replace('  id: ID!\n', '  id: ID! @deprecated(reason: "Use `uid`.")\n  uid: ID!\n');
  assert.ok(gate(base, deprecated, { manifests: {} }).ok);
});

test('a removal passes only after its sunset, and never without one', () => {
  const removed = base.replace(/^  "Old."\n  legacy: .*\n/m, '');
  assert.ok(removed !== base, 'the test must actually remove a field');
  assert.ok(gate(base, removed, { manifests: {}, today: '2026-07-01' }).ok, 'after the sunset');
  assert.equal(gate(base, removed, { manifests: {}, today: '2026-06-01' }).ok, false, 'before the sunset');
  const noSunset = base.replace(/^  nickname: .*\n/m, '');
  assert.equal(gate(base, noSunset, { manifests: {}, today: '2099-01-01' }).ok, false, 'deprecated without a sunset');
});

test("a supported app's operation that no longer validates fails the gate", () => {
  const manifest = { format: 'apollo-persisted-query-manifest', version: 1,
    operations: [{ id: 'a', name: 'Old', type: 'query', body: 'query Old { user { legacy } }' }] };
  assert.ok(gate(base, base, { manifests: { 'ios-1.0.0.json': manifest } }).ok);
  const removed = base.replace(/^  "Old."\n  legacy: .*\n/m, '');
  const result = gate(base, removed, { manifests: { 'ios-1.0.0.json': manifest }, today: '2026-07-01' });
  assert.equal(result.ok, false, result.output);
});

// graphql-js (the reference implementation every codegen tool builds on) must accept the
// checked-in schema.graphql, and every screen query in playground/queries must validate
// against it — this is what graphql-codegen / Apollo iOS / Apollo Kotlin will do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchema, parse, validate, assertValidSchema } from 'graphql';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const schema = buildSchema(readFileSync(join(root, 'schema.graphql'), 'utf8'));

test('schema.graphql builds and is a valid schema', () => {
  assertValidSchema(schema);
  for (const name of ['Query', 'Mutation', 'Subscription', 'Node', 'User', 'Post', 'Comment', 'PostConnection', 'PageInfo']) {
    assert.ok(schema.getType(name), `type ${name} exists`);
  }
  const node = schema.getType('Node');
  const implementations = schema.getPossibleTypes(node).map((t) => t.name).sort();
  assert.deepEqual(implementations, ['Comment', 'Conversation', 'Message', 'Post', 'User']);
});

test('every screen query validates against the schema', () => {
  const dir = join(root, 'playground', 'queries');
  const files = readdirSync(dir).filter((f) => f.endsWith('.graphql'));
  assert.ok(files.length >= 3);
  for (const file of files) {
    const errors = validate(schema, parse(readFileSync(join(dir, file), 'utf8')));
    assert.deepEqual(errors.map((e) => e.message), [], file);
  }
});

test('an invalid query is rejected (the check can fail)', () => {
  const errors = validate(schema, parse('{ feed { edges { node { nope } } } }'));
  assert.ok(errors.length > 0);
});

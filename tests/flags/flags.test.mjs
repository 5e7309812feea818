// Feature flags through OpenFeature's own OFREP provider (npm @openfeature/ofrep-provider on
// @openfeature/server-sdk) against a live mobile-bff started by run.sh with the flags below
// stored by `mobile-bff flags set|import`. Rollout buckets are checked against an independent
// MurmurHash3 written here from the algorithm (Unleash's `murmur3("<flag>:<key>") % 100 + 1`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const base = process.env.FLAGS_TEST_URL;
const bin = process.env.FLAGS_TEST_BIN;
const aliceId = process.env.FLAGS_TEST_ALICE_ID;
const aliceToken = process.env.FLAGS_TEST_ALICE_TOKEN;
assert.ok(base && bin && aliceId && aliceToken, 'run through run.sh');

function murmur3(text, seed = 0) {
  const data = Buffer.from(text, 'utf8');
  let h = seed >>> 0;
  const c1 = 0xcc9e2d51, c2 = 0x1b873593;
  const blocks = data.length & ~3;
  const mix = (k) => {
    k = Math.imul(k, c1); k = (k << 15) | (k >>> 17); return Math.imul(k, c2);
  };
  for (let i = 0; i < blocks; i += 4) {
    h ^= mix(data.readUInt32LE(i));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (data.length & 3) {
    case 3: k ^= data[blocks + 2] << 16; // falls through
    case 2: k ^= data[blocks + 1] << 8; // falls through
    case 1: k ^= data[blocks]; h ^= mix(k);
  }
  h ^= data.length;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
const inRollout = (flag, key, pct) => (murmur3(`${flag}:${key}`) % 100) + 1 <= pct;

async function client(name, headers = {}) {
  await OpenFeature.setProviderAndWait(name, new OFREPProvider({ baseUrl: base, headers }));
  return OpenFeature.getClient(name);
}

test('the hash written here agrees with the reference vectors', () => {
  assert.equal(murmur3(''), 0);
  assert.equal(murmur3('hello'), 0x248bfa47);
  assert.equal(murmur3('The quick brown fox jumps over the lazy dog'), 0x2e4ff723);
});

test('a 50 % boolean rollout: each user in the bucket the formula gives, about half of many', async () => {
  const flags = await client('anonymous');
  let on = 0;
  for (let i = 0; i < 300; i++) {
    const targetingKey = `user-${i}`;
    const details = await flags.getBooleanDetails('checkout', false, { targetingKey });
    const expected = inRollout('checkout', targetingKey, 50);
    assert.equal(details.value, expected, `${targetingKey}: ${JSON.stringify(details)}`);
    assert.equal(details.reason, expected ? 'SPLIT' : 'DEFAULT');
    assert.equal(details.errorCode, undefined);
    if (expected) on++;
  }
  assert.ok(on > 110 && on < 190, `50 % enabled ${on} of 300`);
});

test('string and object variants with payloads, typed', async () => {
  const flags = await client('variants');
  const seen = new Set();
  for (let i = 0; i < 40; i++) {
    const details = await flags.getStringDetails('theme', 'none', { targetingKey: `user-${i}` });
    assert.ok(['dark', 'light'].includes(details.value), JSON.stringify(details));
    assert.equal(details.variant, details.value);
    assert.equal(details.reason, 'SPLIT');
    seen.add(details.value);
  }
  assert.deepEqual([...seen].sort(), ['dark', 'light']);
  const limits = await flags.getObjectValue('limits', {}, { targetingKey: 'user-1' });
  assert.deepEqual(limits, { maxUploadMb: 25 });
});

test('errors come back as OpenFeature errors with the default value', async () => {
  const flags = await client('errors');
  const missing = await flags.getBooleanDetails('no-such-flag', true, { targetingKey: 'u' });
  assert.equal(missing.value, true);
  assert.equal(missing.errorCode, 'FLAG_NOT_FOUND');
  const noKey = await flags.getBooleanDetails('checkout', true, {});
  assert.equal(noKey.value, true);
  assert.equal(noKey.errorCode, 'TARGETING_KEY_MISSING');
  const wrongType = await flags.getStringDetails('checkout', 'x', { targetingKey: 'u' });
  assert.equal(wrongType.value, 'x');
  assert.equal(wrongType.errorCode, 'TYPE_MISMATCH');
});

test('targeting on the app headers, and a token evaluating for its own user', async () => {
  const ios = await client('ios', { 'X-Platform': 'ios', 'X-App-Version': '3.2.0' });
  const android = await client('android', { 'X-Platform': 'android', 'X-App-Version': '3.2.0' });
  const oldIos = await client('old-ios', { 'X-Platform': 'ios', 'X-App-Version': '3.1' });
  assert.equal(await ios.getBooleanValue('ios-only', false, { targetingKey: 'u' }), true);
  assert.equal(await android.getBooleanValue('ios-only', false, { targetingKey: 'u' }), false);
  assert.equal(await oldIos.getBooleanValue('ios-only', false, { targetingKey: 'u' }), false);
  const alice = await client('alice', { Authorization: `Bearer ${aliceToken}` });
  // A claimed key on the other side of the rollout does not change alice's answer.
  const mine = inRollout('checkout', aliceId, 50);
  const claimed = Array.from({ length: 100 }, (_, i) => `x-${i}`).find((k) => inRollout('checkout', k, 50) !== mine);
  assert.equal(await alice.getBooleanValue('checkout', !mine, { targetingKey: claimed }), mine);
});

test('flags kill turns the flag off for the provider within seconds', async () => {
  const flags = await client('kill');
  const on = Array.from({ length: 100 }, (_, i) => `user-${i}`).find((k) => inRollout('checkout', k, 50));
  assert.equal(await flags.getBooleanValue('checkout', false, { targetingKey: on }), true);
  const started = Date.now();
  execFileSync(bin, ['flags', 'kill', 'checkout', '--actor', 'ofrep-test'], { env: process.env });
  let details;
  while (Date.now() - started < 10_000) {
    details = await flags.getBooleanDetails('checkout', true, { targetingKey: on });
    if (details.reason === 'DISABLED') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(details.reason, 'DISABLED', JSON.stringify(details));
  assert.equal(details.value, false);
  assert.ok(Date.now() - started < 5_000, `the kill took ${Date.now() - started} ms`);
});

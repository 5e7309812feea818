// GraphQL-over-HTTP conformance: the `graphql-http` package's server audits (the reference
// audit suite of the GraphQL over HTTP spec) run against a live mobile-bff at $BFF_URL.
//
// Every audit is a subtest. An audit named "MUST …" that reports status 'error' fails the
// test, with the request and response that broke it. SHOULD ('warn') and MAY ('notice')
// findings are printed as a list but do not fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverAudits } from 'graphql-http';

const BFF_URL = process.env.BFF_URL;

// Requests made by the audit currently running (audits run one after another).
let exchanges = [];

async function recordingFetch(input, init = {}) {
  const req = new Request(input, init);
  const entry = {
    method: req.method,
    url: req.url,
    headers: Object.fromEntries(req.headers),
    body: init.body == null ? undefined : String(init.body),
  };
  exchanges.push(entry);
  const res = await fetch(input, init);
  entry.status = res.status;
  entry.responseHeaders = Object.fromEntries(res.headers);
  try {
    entry.responseBody = await res.clone().text();
  } catch (err) {
    entry.responseBody = `<unreadable: ${err.message}>`;
  }
  return res;
}

function describeExchanges() {
  return exchanges
    .map((e, i) =>
      [
        `  request ${i + 1}: ${e.method} ${e.url}`,
        `    request headers: ${JSON.stringify(e.headers)}`,
        e.body === undefined ? null : `    request body: ${truncate(e.body)}`,
        `    -> ${e.status} ${JSON.stringify(e.responseHeaders)}`,
        `    response body: ${truncate(e.responseBody ?? '')}`,
      ]
        .filter(Boolean)
        .join('\n'),
    )
    .join('\n');
}

function truncate(s, n = 600) {
  return s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s;
}

test('graphql-http server audits (GraphQL over HTTP spec)', async (t) => {
  assert.ok(
    BFF_URL,
    'BFF_URL is not set: this test needs a running mobile-bff (use tests/clients/run.sh)',
  );
  const url = `${BFF_URL.replace(/\/$/, '')}/graphql`;
  const audits = serverAudits({ url, fetchFn: recordingFetch });
  assert.ok(audits.length > 0, 'graphql-http returned no audits');

  const results = [];
  for (const audit of audits) {
    await t.test(`${audit.id} ${audit.name}`, async (st) => {
      exchanges = [];
      const result = await audit.fn();
      if (result.status !== 'ok') st.diagnostic(`${result.status}: ${result.reason}`);
      results.push({ ...result, exchanges: describeExchanges() });
      if (result.status === 'error' || (result.status !== 'ok' && audit.name.startsWith('MUST'))) {
        assert.fail(`${audit.id} ${audit.name}\n  reason: ${result.reason}\n${describeExchanges()}`);
      }
    });
  }

  const count = (level, status) =>
    results.filter((r) => r.name.startsWith(level) && (status ? r.status === status : true)).length;
  const mustOk = count('MUST', 'ok');
  const mustFailed = count('MUST') - mustOk;
  const shouldNotOk = results.filter((r) => r.name.startsWith('SHOULD') && r.status !== 'ok');
  const mayNotOk = results.filter((r) => r.name.startsWith('MAY') && r.status !== 'ok');

  const lines = [
    '',
    `graphql-http audits: ${results.length} run against ${url}`,
    `  MUST:   ${mustOk} ok, ${mustFailed} failed`,
    `  SHOULD: ${count('SHOULD', 'ok')} ok, ${shouldNotOk.length} warnings`,
    `  MAY:    ${count('MAY', 'ok')} ok, ${mayNotOk.length} notices`,
  ];
  if (shouldNotOk.length) {
    lines.push('SHOULD warnings (not failing):');
    for (const r of shouldNotOk) lines.push(`  - ${r.id} ${r.name}: ${r.reason}`);
  }
  if (mayNotOk.length) {
    lines.push('MAY notices (not failing):');
    for (const r of mayNotOk) lines.push(`  - ${r.id} ${r.name}: ${r.reason}`);
  }
  console.log(lines.join('\n'));
});

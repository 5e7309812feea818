// Browser smoke test for the mobile-bff GraphQL playground (GET /playground).
//
//   BFF_URL=http://127.0.0.1:18080 npm test      (or: bash tests/browser/run.sh)
//
// Drives Debian's headless Chromium through playwright-core: dev login, run the
// HomeFeed tab, and check the response pane shows feed edges with post bodies.
// Also fails on uncaught page errors and on any request leaving the machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const BFF_URL = (process.env.BFF_URL || '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const FAILURE_PNG = path.join(HERE, 'failure.png');
const STEP_TIMEOUT = 30_000;

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** True for URLs that stay on this machine (or never touch the network). */
function isLocal(url) {
  let u;
  try { u = new URL(url); } catch { return false; }
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:') return true;
  return LOCAL_HOSTS.has(u.hostname) || u.hostname.startsWith('127.');
}

/** Text of GraphiQL's response pane (CodeMirror 5 renders only visible lines, so ask the editor). */
async function responseText(page) {
  return page.evaluate(() => {
    const cm = document.querySelector('.result-window .CodeMirror, .graphiql-response .CodeMirror');
    if (cm && cm.CodeMirror) return cm.CodeMirror.getValue();
    const pane = document.querySelector('.graphiql-response, .result-window');
    return pane ? pane.innerText : '';
  });
}

test('playground: dev login and run HomeFeed', { timeout: 120_000 }, async () => {
  assert.ok(BFF_URL, 'set BFF_URL to the server base URL, e.g. http://127.0.0.1:18080');
  assert.ok(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: STEP_TIMEOUT,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  // A plain launch + newContext is a fresh profile: no stored token or tabs.
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);

  const pageErrors = [];
  const externalRequests = [];
  const failedRequests = [];
  const consoleErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err && err.stack || err)));
  page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
  context.on('request', (req) => { if (!isLocal(req.url())) externalRequests.push(req.url()); });
  context.on('requestfailed', (req) => {
    failedRequests.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
  });

  try {
    const resp = await page.goto(`${BFF_URL}/playground`, { waitUntil: 'load' });
    assert.equal(resp.status(), 200, 'GET /playground status');

    // GraphiQL mounted, with the three screen queries as tabs, HomeFeed active.
    await page.waitForSelector('.graphiql-execute-button');
    const tabs = await page.locator('.graphiql-tab').allInnerTexts();
    for (const name of ['HomeFeed', 'Profile', 'PostDetail']) {
      assert.ok(tabs.some((t) => t.includes(name)), `tab ${name} missing; tabs: ${JSON.stringify(tabs)}`);
    }
    const active = await page.locator('.graphiql-tab-active').innerText();
    assert.match(active, /HomeFeed/, 'HomeFeed tab is active at load');

    // Dev login fills the token and shows the handle.
    await page.locator('#dev-login').waitFor({ state: 'visible' }).catch(() => {
      throw new Error('#dev-login is hidden: /playground/config.json says devLogin is not true ' +
        '(start the server with BFF_PLAYGROUND__DEV_LOGIN=true)');
    });
    await page.locator('#dev-login').click();
    await page.waitForFunction(() => (document.querySelector('#whoami')?.textContent || '').includes('@'));
    const token = await page.locator('#token-input').inputValue();
    assert.ok(token.length > 0, 'dev login filled #token-input');
    assert.equal(await page.evaluate(() => localStorage.getItem('mobile-bff.playground.token')), token,
      'token stored in localStorage');

    // Run the HomeFeed query and wait for feed edges with post bodies.
    await page.locator('.graphiql-execute-button').click();
    const handle = await page.waitForFunction(() => {
      const cm = document.querySelector('.result-window .CodeMirror, .graphiql-response .CodeMirror');
      const text = cm && cm.CodeMirror ? cm.CodeMirror.getValue()
        : (document.querySelector('.graphiql-response, .result-window')?.innerText || '');
      return text.includes('"feed"') && text.includes('"edges"') && text.includes('"body"') ? text : false;
    }, null, { timeout: STEP_TIMEOUT }).catch(async (err) => {
      throw new Error(`response pane never showed feed edges with a body: ${err.message}\n` +
        `--- response pane ---\n${(await responseText(page)).slice(0, 4000)}`);
    });
    const text = await handle.jsonValue();
    const result = JSON.parse(text);
    assert.ok(!result.errors, `GraphQL errors: ${JSON.stringify(result.errors)}`);
    const edges = result.data.feed.edges;
    assert.ok(Array.isArray(edges) && edges.length > 0, 'feed has at least one edge');
    assert.ok(edges.some((e) => typeof e.node?.body === 'string'), 'an edge has a post body');

    assert.deepEqual(pageErrors, [], 'no uncaught page errors');
    assert.deepEqual(externalRequests, [], 'no requests to non-local URLs');
    assert.deepEqual(failedRequests.filter((r) => !isLocal(r.split(' ')[1])), [],
      'no failed requests to non-local URLs');
    if (consoleErrors.length) console.log('console errors (not fatal):\n' + consoleErrors.join('\n'));
  } catch (err) {
    await page.screenshot({ path: FAILURE_PNG, fullPage: true }).catch(() => {});
    console.error(`screenshot saved to ${FAILURE_PNG}`);
    if (pageErrors.length) console.error('page errors:\n' + pageErrors.join('\n'));
    if (failedRequests.length) console.error('failed requests:\n' + failedRequests.join('\n'));
    if (externalRequests.length) console.error('external requests:\n' + externalRequests.join('\n'));
    throw err;
  } finally {
    await browser.close();
  }
});

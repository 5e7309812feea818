// mobile-bff playground glue: plain JS, no build step.
//
// Loads /playground/config.json and /playground/queries.json, wires the top
// bar (access token + optional dev login) and mounts GraphiQL with one tab
// per screen query. Relies on the UMD globals React, ReactDOM and GraphiQL
// loaded by index.html from /playground/vendor/.
(function () {
  'use strict';

  var TOKEN_KEY = 'mobile-bff.playground.token';
  var HANDLE_KEY = 'mobile-bff.playground.handle';
  var DEFAULT_CONFIG = { devLogin: false, endpoint: '/graphql' };

  var tokenInput = document.getElementById('token-input');
  var devLoginButton = document.getElementById('dev-login');
  var whoami = document.getElementById('whoami');
  var mountPoint = document.getElementById('graphiql');

  // --- localStorage helpers (storage may be unavailable, e.g. some private modes)

  function load(key) {
    try { return window.localStorage.getItem(key) || ''; } catch (e) { return ''; }
  }
  function save(key, value) {
    try {
      if (value) window.localStorage.setItem(key, value);
      else window.localStorage.removeItem(key);
    } catch (e) { /* ignore */ }
  }

  // --- top bar -------------------------------------------------------------

  function showWhoami(text, isError) {
    whoami.textContent = text || '';
    whoami.classList.toggle('error', !!isError);
  }

  function currentToken() {
    // Accept a pasted "Bearer xyz" as well as the bare token.
    return tokenInput.value.trim().replace(/^Bearer\s+/i, '');
  }

  function setToken(token, handle) {
    tokenInput.value = token || '';
    save(TOKEN_KEY, token || '');
    save(HANDLE_KEY, handle || '');
    showWhoami(handle ? 'signed in as @' + handle : '');
  }

  // Restore the token (and the dev-login handle that came with it) on reload.
  (function restoreToken() {
    var token = load(TOKEN_KEY);
    if (!token) return;
    tokenInput.value = token;
    var handle = load(HANDLE_KEY);
    if (handle) showWhoami('signed in as @' + handle);
  })();

  // A hand-edited token no longer belongs to the dev-login user.
  tokenInput.addEventListener('input', function () {
    save(TOKEN_KEY, tokenInput.value.trim());
    save(HANDLE_KEY, '');
    showWhoami('');
  });

  function devLogin() {
    devLoginButton.disabled = true;
    showWhoami('signing in…');
    return fetch('/playground/dev-login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: '{}'
    })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (body) {
          if (!res.ok || !body || typeof body.token !== 'string') {
            var msg = (body && (body.error || body.message)) || ('HTTP ' + res.status);
            throw new Error(typeof msg === 'string' ? msg : JSON.stringify(msg));
          }
          return body;
        });
      })
      .then(function (body) { setToken(body.token, body.handle || ''); })
      .catch(function (err) { showWhoami('dev login failed: ' + err.message, true); })
      .then(function () { devLoginButton.disabled = false; });
  }
  devLoginButton.addEventListener('click', devLogin);

  // --- GraphiQL ------------------------------------------------------------

  // Fetcher that reads the token input at call time, so a new token applies
  // to the very next request. Headers typed into GraphiQL's headers editor
  // override ours.
  function makeFetcher(endpoint) {
    return function fetcher(graphQLParams, opts) {
      var headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
      var token = currentToken();
      if (token) headers.Authorization = 'Bearer ' + token;
      var extra = (opts && opts.headers) || {};
      Object.keys(extra).forEach(function (k) { headers[k] = extra[k]; });
      return fetch(endpoint, {
        method: 'POST',
        headers: headers,
        body: JSON.stringify(graphQLParams),
        credentials: 'same-origin'
      }).then(function (res) {
        return res.text().then(function (text) {
          try {
            return JSON.parse(text);
          } catch (e) {
            // Not JSON (e.g. a plain-text 401/500): show it as a GraphQL error.
            return { errors: [{ message: 'HTTP ' + res.status + ': ' + text.slice(0, 2000) }] };
          }
        });
      });
    };
  }

  // queries.json entries -> GraphiQL tab definitions (variables as JSON text).
  function toTabs(queries) {
    if (!Array.isArray(queries)) return [];
    return queries
      .filter(function (q) { return q && typeof q.query === 'string'; })
      .map(function (q) {
        var vars = q.variables && typeof q.variables === 'object' ? q.variables : {};
        return {
          query: q.query,
          variables: Object.keys(vars).length ? JSON.stringify(vars, null, 2) : ''
        };
      });
  }

  function getJSON(url, fallback) {
    return fetch(url, { headers: { Accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) throw new Error(url + ': HTTP ' + res.status);
        return res.json();
      })
      .catch(function (err) {
        console.warn('playground: could not load', url, err);
        return fallback;
      });
  }

  function mount(config, tabs) {
    var props = {
      fetcher: makeFetcher(config.endpoint || DEFAULT_CONFIG.endpoint),
      defaultEditorToolsVisibility: 'variables',
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultQuery: '# Write a query, or pick one of the screen queries in the tabs above.\n'
    };
    if (tabs.length) {
      // Fresh browser: one tab per screen query, the first one active.
      props.defaultTabs = tabs;
      // After a reload GraphiQL restores its saved tabs; passing the first
      // query makes the matching saved tab the active one (instead of GraphiQL
      // appending an empty tab).
      props.query = tabs[0].query;
      props.variables = tabs[0].variables;
    }
    mountPoint.textContent = '';
    ReactDOM.createRoot(mountPoint).render(React.createElement(GraphiQL, props));
  }

  Promise.all([
    getJSON('/playground/config.json', DEFAULT_CONFIG),
    getJSON('/playground/queries.json', [])
  ]).then(function (results) {
    var config = Object.assign({}, DEFAULT_CONFIG, results[0] || {});
    devLoginButton.hidden = config.devLogin !== true;
    mount(config, toTabs(results[1]));
  });
})();

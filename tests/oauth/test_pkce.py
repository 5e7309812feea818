"""OAuth2 authorization code + PKCE against a live mobile-bff, driven by Authlib (a client
library none of us wrote). Run by tests/oauth/run.sh, which starts the server with a
registered client `ios-app` redirecting to `com.example.app:/oauth`."""

import os
import uuid
from urllib.parse import parse_qs, parse_qsl, urlencode, urlparse

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

BASE = os.environ["BFF_URL"]
CLIENT_ID = "ios-app"
REDIRECT = "com.example.app:/oauth"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def account():
    email = f"pkce-{uuid.uuid4().hex[:8]}@example.com"
    query = """mutation($input: RegisterInput!) { register(input: $input) { accessToken } }"""
    variables = {"input": {"email": email, "password": PASSWORD, "handle": f"p{uuid.uuid4().hex[:10]}",
                           "displayName": "PKCE", "device": {"clientDeviceId": str(uuid.uuid4()), "platform": "IOS"}}}
    r = requests.post(f"{BASE}/graphql", json={"query": query, "variables": variables}, timeout=30)
    assert r.status_code == 200 and "errors" not in r.json(), r.text
    return email


def client():
    return OAuth2Session(client_id=CLIENT_ID, redirect_uri=REDIRECT, code_challenge_method="S256",
                         token_endpoint_auth_method="none")


def sign_in(authorization_url, email, password=PASSWORD):
    """What the in-app browser does: load the page, submit the form, stop at the app redirect."""
    page = requests.get(authorization_url, timeout=30)
    assert page.status_code == 200 and "<form" in page.text, page.text
    form = dict(parse_qsl(urlparse(authorization_url).query))
    form.update(email=email, password=password)
    return requests.post(f"{BASE}/oauth/authorize", data=form, allow_redirects=False, timeout=30)


def authorize(email):
    session = client()
    verifier = generate_token(64)
    url, state = session.create_authorization_url(f"{BASE}/oauth/authorize", code_verifier=verifier)
    assert "code_challenge=" in url and "code_challenge_method=S256" in url
    response = sign_in(url, email)
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    assert parse_qs(urlparse(location).query)["state"] == [state], "state is passed through"
    return session, verifier, location


def test_full_pkce_flow_then_refresh(account):
    session, verifier, location = authorize(account)
    token = session.fetch_token(f"{BASE}/oauth/token", authorization_response=location, code_verifier=verifier)
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    viewer = requests.post(f"{BASE}/graphql", json={"query": "{ viewer { handle } }"},
                           headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=30)
    assert viewer.status_code == 200 and viewer.json()["data"]["viewer"]["handle"].startswith("p")
    refreshed = session.refresh_token(f"{BASE}/oauth/token", refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"], "refresh tokens rotate"


def test_wrong_verifier_is_refused(account):
    session, _verifier, location = authorize(account)
    with pytest.raises(OAuthError) as refused:
        session.fetch_token(f"{BASE}/oauth/token", authorization_response=location, code_verifier=generate_token(64))
    assert refused.value.error == "invalid_grant"


def test_code_is_single_use(account):
    session, verifier, location = authorize(account)
    token = session.fetch_token(f"{BASE}/oauth/token", authorization_response=location, code_verifier=verifier)
    with pytest.raises(OAuthError) as reused:
        client().fetch_token(f"{BASE}/oauth/token", authorization_response=location, code_verifier=verifier)
    assert reused.value.error == "invalid_grant"
    # The replay revoked the session the code opened.
    viewer = requests.post(f"{BASE}/graphql", json={"query": "{ viewer { handle } }"},
                           headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=30)
    assert viewer.status_code == 401


def test_unregistered_redirect_is_refused_without_redirecting():
    session = OAuth2Session(client_id=CLIENT_ID, redirect_uri="https://evil.example.com/cb", code_challenge_method="S256")
    url, _ = session.create_authorization_url(f"{BASE}/oauth/authorize", code_verifier=generate_token(64))
    response = requests.get(url, allow_redirects=False, timeout=30)
    assert response.status_code == 400 and "location" not in response.headers
    assert response.json()["error"] == "invalid_request"


def test_plain_and_implicit_are_refused():
    plain = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "state": "s1",
             "code_challenge": "a" * 43, "code_challenge_method": "plain"}
    r = requests.get(f"{BASE}/oauth/authorize?{urlencode(plain)}", allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303)
    query = parse_qs(urlparse(r.headers["location"]).query)
    assert query["error"] == ["invalid_request"] and query["state"] == ["s1"]
    implicit = dict(plain, response_type="token", code_challenge_method="S256")
    r = requests.get(f"{BASE}/oauth/authorize?{urlencode(implicit)}", allow_redirects=False, timeout=30)
    assert parse_qs(urlparse(r.headers["location"]).query)["error"] == ["unsupported_response_type"]


def test_wrong_password_stays_on_the_page(account):
    session = client()
    url, _ = session.create_authorization_url(f"{BASE}/oauth/authorize", code_verifier=generate_token(64))
    response = sign_in(url, account, password="not the password")
    assert response.status_code == 401 and "location" not in response.headers


def test_refresh_token_is_bound_to_the_client_that_opened_the_session(account):
    session, verifier, location = authorize(account)
    token = session.fetch_token(f"{BASE}/oauth/token", authorization_response=location, code_verifier=verifier)
    # A stolen refresh token presented without the client it was issued to, or as another client.
    for form in ({"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
                 {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": "other-app"}):
        refused = requests.post(f"{BASE}/oauth/token", data=form, timeout=30)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
    # The refusals did not spend it: the client itself still refreshes.
    refreshed = session.refresh_token(f"{BASE}/oauth/token", refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]

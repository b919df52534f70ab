"""Digital-ID login: the real authlib client against the real local OIDC provider on loopback."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from voting._dev_oidc import DevClient, DevOidcProvider, DevSubject
from voting.auth import OidcError, RollKey, roll_match_key
from voting.auth._oidc import OidcProviderConfig, OidcRelyingParty, ballot_nonce

BASE = hashlib.sha256(b"election").digest()
BALLOT = hashlib.sha256(b"ballot A").digest()
OTHER = hashlib.sha256(b"ballot B").digest()
ROLL_KEY = RollKey(b"\x07" * 32)
REDIRECT = "https://vote.example.jp/auth/oidc/callback"
CLAIMS = {"name": "研究 学", "birthdate": "1985-11-03",
          "address": {"formatted": "茨城県つくば市千現二丁目1番地"}}
CLIENT_A = DevClient("tvote-a", "secret-a", (REDIRECT,))
CLIENT_B = DevClient("tvote-b", "secret-b", (REDIRECT,))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def provider():
    with DevOidcProvider([CLIENT_A, CLIENT_B], DevSubject("user-123", CLAIMS)) as p:
        yield p


def rp_for(provider: DevOidcProvider, client: DevClient = CLIENT_A) -> OidcRelyingParty:
    return OidcRelyingParty(OidcProviderConfig(provider.issuer, client.client_id, client.client_secret,
                                               REDIRECT), ROLL_KEY)


def browser(url: str) -> str:
    """What the voter's browser does: follow to the provider, which redirects back with the code."""
    r = httpx.get(url, follow_redirects=False)
    assert r.status_code == 302, r.text
    return r.headers["location"]


def login(rp: OidcRelyingParty, ballot: bytes = BALLOT):
    pending = rp.begin(election_base_hash=BASE, ballot_hash=ballot)
    return pending, browser(pending.authorization_url)


def expect(code: str, fn, *a, **kw) -> OidcError:
    with pytest.raises(OidcError) as ei:
        fn(*a, **kw)
    assert ei.value.code == code, ei.value
    return ei.value


def test_full_flow(provider) -> None:
    rp = rp_for(provider)
    pending, callback = login(rp)
    assert callback.startswith(REDIRECT) and "code=" in callback
    assert "code_challenge_method=S256" in pending.authorization_url
    ident = rp.complete(pending, callback, now=now())
    assert ident.issuer == provider.issuer and ident.subject == "user-123"
    roll = roll_match_key(ROLL_KEY, "研究学", dt.date(1985, 11, 3), "茨城県つくば市千現二丁目１番地")
    assert ident.match_key == roll
    assert ident.evidence_hash == ident.evidence.digest
    claims = jwt.decode(ident.evidence.id_token, provider.signing_key).claims
    assert claims["nonce"] == ballot_nonce(BASE, BALLOT, pending.nonce_salt)
    for secret in ("研究", "1985", "つくば"):
        assert secret not in repr(ident)


def test_nonce_depends_on_ballot_and_salt() -> None:
    s1, s2 = b"\x01" * 32, b"\x02" * 32
    assert ballot_nonce(BASE, BALLOT, s1) != ballot_nonce(BASE, OTHER, s1) != ballot_nonce(BASE, BALLOT, s2)
    assert len(ballot_nonce(BASE, BALLOT, s1)) == 43


def test_nonce_for_another_ballot(provider) -> None:
    rp = rp_for(provider)
    pending, callback = login(rp, ballot=OTHER)
    # the server believes the voter is authenticating BALLOT, but the token was issued for OTHER
    expect("oidc.nonce", rp.complete, dataclasses.replace(pending, ballot_hash=BALLOT), callback, now=now())
    pending, callback = login(rp)
    ident = rp.complete(pending, callback, now=now())
    expect("oidc.nonce", rp.verify_id_token, ident.evidence.id_token, election_base_hash=BASE,
           ballot_hash=OTHER, nonce_salt=pending.nonce_salt, now=now())
    expect("oidc.nonce", rp.verify_id_token, ident.evidence.id_token, election_base_hash=BASE,
           ballot_hash=BALLOT, nonce_salt=b"\x00" * 32, now=now())


def test_bad_signature(provider) -> None:
    rp = rp_for(provider)
    pending, callback = login(rp)
    token = rp.complete(pending, callback, now=now()).evidence.id_token
    claims = jwt.decode(token, provider.signing_key).claims
    rogue = RSAKey.generate_key(2048, {"kid": provider.signing_key.kid})
    forged = jwt.encode({"alg": "RS256", "kid": provider.signing_key.kid}, claims, rogue)
    args = dict(election_base_hash=BASE, ballot_hash=BALLOT, nonce_salt=pending.nonce_salt, now=now())
    expect("oidc.signature", rp.verify_id_token, forged, **args)
    head, body, sig = token.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    expect("oidc.signature", rp.verify_id_token, f"{head}.{body}.{flipped}", **args)
    unsigned = jwt.encode({"alg": "none"}, claims, None, algorithms=["none"])
    expect("oidc.signature", rp.verify_id_token, unsigned, **args)


def test_wrong_audience(provider) -> None:
    rp_a, rp_b = rp_for(provider, CLIENT_A), rp_for(provider, CLIENT_B)
    pending, callback = login(rp_a)
    token = rp_a.complete(pending, callback, now=now()).evidence.id_token
    expect("oidc.audience", rp_b.verify_id_token, token, election_base_hash=BASE, ballot_hash=BALLOT,
           nonce_salt=pending.nonce_salt, now=now())


def test_expired_token(provider) -> None:
    rp = rp_for(provider)
    pending, callback = login(rp)
    ident = rp.complete(pending, callback, now=now())
    later = now() + dt.timedelta(seconds=provider.token_lifetime + 61)
    expect("oidc.expired", rp.verify_id_token, ident.evidence.id_token, election_base_hash=BASE,
           ballot_hash=BALLOT, nonce_salt=pending.nonce_salt, now=later)
    earlier = now() - dt.timedelta(minutes=10)  # iat in the future from this clock
    expect("oidc.expired", rp.verify_id_token, ident.evidence.id_token, election_base_hash=BASE,
           ballot_hash=BALLOT, nonce_salt=pending.nonce_salt, now=earlier)


def test_provider_minting_stale_tokens_is_refused() -> None:
    with DevOidcProvider([CLIENT_A], DevSubject("u", CLAIMS), clock=lambda: time.time() - 3600) as p:
        rp = rp_for(p)
        pending, callback = login(rp)
        expect("oidc.expired", rp.complete, pending, callback, now=now())


def test_wrong_or_missing_pkce_verifier(provider) -> None:
    rp = rp_for(provider)
    pending, callback = login(rp)
    expect("oidc.token_exchange", rp.complete, dataclasses.replace(pending, code_verifier="x" * 64), callback,
           now=now())
    pending, callback = login(rp)
    expect("oidc.token_exchange", rp.complete, dataclasses.replace(pending, code_verifier=""), callback,
           now=now())


def test_token_endpoint_requires_verifier_directly(provider) -> None:
    rp = rp_for(provider)
    _, callback = login(rp)
    code = httpx.URL(callback).params["code"]
    r = httpx.post(f"{provider.issuer}/token", data={"grant_type": "authorization_code", "code": code,
                                                     "redirect_uri": REDIRECT},
                   auth=(CLIENT_A.client_id, CLIENT_A.client_secret))
    assert r.status_code == 400 and r.json()["error"] in ("invalid_request", "invalid_grant")


def test_authorize_without_pkce_refused(provider) -> None:
    r = httpx.get(f"{provider.issuer}/authorize", params={
        "response_type": "code", "client_id": CLIENT_A.client_id, "redirect_uri": REDIRECT,
        "scope": "openid", "state": "s", "nonce": "n"})
    assert r.status_code == 400
    r = httpx.get(f"{provider.issuer}/authorize", params={
        "response_type": "code", "client_id": CLIENT_A.client_id, "redirect_uri": REDIRECT, "scope": "openid",
        "state": "s", "nonce": "n", "code_challenge": "abc" * 15, "code_challenge_method": "plain"})
    assert r.status_code == 400


def test_state_mismatch_and_code_reuse(provider) -> None:
    rp = rp_for(provider)
    pending, callback = login(rp)
    expect("oidc.state", rp.complete, dataclasses.replace(pending, state="other"), callback, now=now())
    rp.complete(pending, callback, now=now())
    expect("oidc.token_exchange", rp.complete, pending, callback, now=now())


def test_discovery_issuer_must_match(provider) -> None:
    cfg = OidcProviderConfig(provider.issuer + "/", "tvote-a", "secret-a", REDIRECT)
    rp = OidcRelyingParty(cfg, ROLL_KEY)
    expect("oidc.config", rp.discover)
    dead = OidcRelyingParty(OidcProviderConfig("http://127.0.0.1:9", "a", "b", REDIRECT), ROLL_KEY, timeout=2)
    expect("oidc.transport", dead.discover)

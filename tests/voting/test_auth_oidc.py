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

from voting.auth import OidcError, RollKey, roll_match_key
from voting.auth._oidc import OidcProviderConfig, OidcRelyingParty, ballot_nonce, subject_key
from voting.testing import (
    DEV_ACR,
    DEV_TRUST_FRAMEWORK,
    DEV_VERIFIED_SCOPE,
    DevClient,
    DevOidcProvider,
    DevSubject,
)

BASE = hashlib.sha256(b"election").digest()
BALLOT = hashlib.sha256(b"ballot A").digest()
OTHER = hashlib.sha256(b"ballot B").digest()
ROLL_KEY = RollKey(b"\x07" * 32)
REDIRECT = "https://vote.example.jp/auth/oidc/callback"
CLAIMS = {
    "name": "研究 学",
    "birthdate": "1985-11-03",
    "address": {"formatted": "茨城県つくば市千現二丁目1番地"},
}
CLIENT_A = DevClient("tvote-a", "secret-a", (REDIRECT,))
CLIENT_B = DevClient("tvote-b", "secret-b", (REDIRECT,))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def provider():
    with DevOidcProvider([CLIENT_A, CLIENT_B], DevSubject("user-123", CLAIMS)) as p:
        yield p


def config(issuer: str, client: DevClient = CLIENT_A, **kw) -> OidcProviderConfig:
    kw.setdefault("acr_values", (DEV_ACR,))
    if kw.get("claims_source") != "verified_scope":
        kw.setdefault("trust_frameworks", (DEV_TRUST_FRAMEWORK,))
    return OidcProviderConfig(issuer, client.client_id, client.client_secret, REDIRECT, **kw)


def rp_for(provider: DevOidcProvider, client: DevClient = CLIENT_A, **kw) -> OidcRelyingParty:
    return OidcRelyingParty(config(provider.issuer, client, **kw), ROLL_KEY)


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
    expect(
        "oidc.nonce",
        rp.verify_id_token,
        ident.evidence.id_token,
        election_base_hash=BASE,
        ballot_hash=OTHER,
        nonce_salt=pending.nonce_salt,
        now=now(),
    )
    expect(
        "oidc.nonce",
        rp.verify_id_token,
        ident.evidence.id_token,
        election_base_hash=BASE,
        ballot_hash=BALLOT,
        nonce_salt=b"\x00" * 32,
        now=now(),
    )


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
    expect(
        "oidc.audience",
        rp_b.verify_id_token,
        token,
        election_base_hash=BASE,
        ballot_hash=BALLOT,
        nonce_salt=pending.nonce_salt,
        now=now(),
    )


def test_expired_token(provider) -> None:
    rp = rp_for(provider)
    pending, callback = login(rp)
    ident = rp.complete(pending, callback, now=now())
    later = now() + dt.timedelta(seconds=provider.token_lifetime + 61)
    expect(
        "oidc.expired",
        rp.verify_id_token,
        ident.evidence.id_token,
        election_base_hash=BASE,
        ballot_hash=BALLOT,
        nonce_salt=pending.nonce_salt,
        now=later,
    )
    earlier = now() - dt.timedelta(minutes=10)  # iat in the future from this clock
    expect(
        "oidc.expired",
        rp.verify_id_token,
        ident.evidence.id_token,
        election_base_hash=BASE,
        ballot_hash=BALLOT,
        nonce_salt=pending.nonce_salt,
        now=earlier,
    )


def test_provider_minting_stale_tokens_is_refused() -> None:
    with DevOidcProvider([CLIENT_A], DevSubject("u", CLAIMS), clock=lambda: time.time() - 3600) as p:
        rp = rp_for(p)
        pending, callback = login(rp)
        expect("oidc.expired", rp.complete, pending, callback, now=now())


def test_wrong_or_missing_pkce_verifier(provider) -> None:
    rp = rp_for(provider)
    pending, callback = login(rp)
    expect(
        "oidc.token_exchange",
        rp.complete,
        dataclasses.replace(pending, code_verifier="x" * 64),
        callback,
        now=now(),
    )
    pending, callback = login(rp)
    expect(
        "oidc.token_exchange",
        rp.complete,
        dataclasses.replace(pending, code_verifier=""),
        callback,
        now=now(),
    )


def test_token_endpoint_requires_verifier_directly(provider) -> None:
    rp = rp_for(provider)
    _, callback = login(rp)
    code = httpx.URL(callback).params["code"]
    r = httpx.post(
        f"{provider.issuer}/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(CLIENT_A.client_id, CLIENT_A.client_secret),
    )
    assert r.status_code == 400 and r.json()["error"] in ("invalid_request", "invalid_grant")


def test_authorize_without_pkce_refused(provider) -> None:
    r = httpx.get(
        f"{provider.issuer}/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_A.client_id,
            "redirect_uri": REDIRECT,
            "scope": "openid",
            "state": "s",
            "nonce": "n",
        },
    )
    assert r.status_code == 400
    r = httpx.get(
        f"{provider.issuer}/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_A.client_id,
            "redirect_uri": REDIRECT,
            "scope": "openid",
            "state": "s",
            "nonce": "n",
            "code_challenge": "abc" * 15,
            "code_challenge_method": "plain",
        },
    )
    assert r.status_code == 400


def test_state_mismatch_and_code_reuse(provider) -> None:
    rp = rp_for(provider)
    pending, callback = login(rp)
    expect("oidc.state", rp.complete, dataclasses.replace(pending, state="other"), callback, now=now())
    rp.complete(pending, callback, now=now())
    expect("oidc.token_exchange", rp.complete, pending, callback, now=now())


def test_discovery_issuer_must_match(provider) -> None:
    rp = OidcRelyingParty(config(provider.issuer + "/"), ROLL_KEY)
    expect("oidc.config", rp.discover)
    dead = OidcRelyingParty(config("http://127.0.0.1:9"), ROLL_KEY, timeout=2)
    expect("oidc.transport", dead.discover)


# ------------------------------------------------------------- identity claims from a verified source only

VICTIM = {
    "name": "被害 者",
    "birthdate": "1950-01-01",
    "address": {"formatted": "茨城県つくば市研究学園一丁目1番地1"},
}
MY_KEY = roll_match_key(ROLL_KEY, "研究学", dt.date(1985, 11, 3), "茨城県つくば市千現二丁目1番地")
VICTIM_KEY = roll_match_key(ROLL_KEY, "被害者", dt.date(1950, 1, 1), "茨城県つくば市研究学園一丁目1番地1")


def login_as_subject(subject: DevSubject, **rp_kw):
    """A full login at a provider that approves ``subject``; returns the verified identity."""
    with DevOidcProvider([CLIENT_A, CLIENT_B], subject) as p:
        rp = rp_for(p, **rp_kw)
        pending, callback = login(rp)
        return rp.complete(pending, callback, now=now())


def mint(provider: DevOidcProvider, salt: bytes, **claims) -> str:
    """An ID token signed by the provider's own key with exactly these claims on top of valid basics."""
    t = int(time.time())
    base = {
        "iss": provider.issuer,
        "aud": CLIENT_A.client_id,
        "sub": "user-123",
        "iat": t,
        "exp": t + 300,
        "auth_time": t,
        "acr": DEV_ACR,
        "nonce": ballot_nonce(BASE, BALLOT, salt),
    }
    base.update(claims)
    return jwt.encode({"alg": "RS256", "kid": provider.signing_key.kid}, base, provider.signing_key)


def verify(rp: OidcRelyingParty, token: str, salt: bytes, **kw):
    return rp.verify_id_token(
        token, election_base_hash=BASE, ballot_hash=BALLOT, nonce_salt=salt, now=now(), **kw
    )


def test_verified_claims_give_the_match_key_and_the_subject_key(provider) -> None:
    rp = rp_for(provider)
    pending, callback = login(rp)
    assert "verified_claims" in pending.authorization_url and "acr_values=" in pending.authorization_url
    ident = rp.complete(pending, callback, now=now())
    assert ident.match_key == MY_KEY
    assert ident.subject_key == subject_key(ROLL_KEY, provider.issuer, "user-123")
    assert subject_key(ROLL_KEY, provider.issuer, "user-124") != ident.subject_key
    assert subject_key(RollKey(b"\x08" * 32), provider.issuer, "user-123") != ident.subject_key


def test_unverified_top_level_claims_are_never_used_for_the_roll() -> None:
    # a provider without identity assurance: the user typed the victim's name, birth date and address
    ident = login_as_subject(DevSubject("attacker", {}, trust_framework=None, unverified_claims=VICTIM))
    assert ident.match_key is None
    # verified claims of the account holder, plus edited top-level claims of someone else: only the former
    ident = login_as_subject(DevSubject("attacker", CLAIMS, unverified_claims=VICTIM))
    assert ident.match_key == MY_KEY


def test_verified_claims_under_another_trust_framework_are_ignored() -> None:
    ident = login_as_subject(DevSubject("u", VICTIM, trust_framework="some_selfie_kyc"))
    assert ident.match_key is None
    ident = login_as_subject(
        DevSubject("u", VICTIM, trust_framework="some_selfie_kyc"),
        trust_frameworks=(DEV_TRUST_FRAMEWORK, "some_selfie_kyc"),
    )
    assert ident.match_key == VICTIM_KEY


def test_verified_claims_shapes(provider) -> None:
    rp = rp_for(provider)
    salt = b"\x05" * 32
    good = {"verification": {"trust_framework": DEV_TRUST_FRAMEWORK}, "claims": CLAIMS}
    other = {"verification": {"trust_framework": "elsewhere"}, "claims": VICTIM}
    assert verify(rp, mint(provider, salt, verified_claims=[other, good]), salt).match_key == MY_KEY
    assert verify(rp, mint(provider, salt, verified_claims=[good, good]), salt).match_key == MY_KEY
    contradicting = {"verification": {"trust_framework": DEV_TRUST_FRAMEWORK}, "claims": VICTIM}
    expect("oidc.claims", verify, rp, mint(provider, salt, verified_claims=[good, contradicting]), salt)
    expect("oidc.claims", verify, rp, mint(provider, salt, verified_claims={"claims": CLAIMS}), salt)
    expect("oidc.claims", verify, rp, mint(provider, salt, verified_claims=["x"]), salt)
    # claims that sit in verification (or at the top level) are not verified claims
    assert (
        verify(
            rp,
            mint(
                provider,
                salt,
                verified_claims={
                    "verification": {"trust_framework": DEV_TRUST_FRAMEWORK, **CLAIMS},
                    "claims": {},
                },
                **CLAIMS,
            ),
            salt,
        ).match_key
        is None
    )
    expect("oidc.claims", verify, rp, mint(provider, salt, sub=""), salt)


def test_verified_scope_mode() -> None:
    kw = {"claims_source": "verified_scope", "verified_scope": DEV_VERIFIED_SCOPE}
    ident = login_as_subject(DevSubject("u", CLAIMS, trust_framework=None), **kw)
    assert ident.match_key == MY_KEY
    # a client that was not granted the verified scope gets no identity, whatever the token carries
    no_scope = DevClient("tvote-a", "secret-a", (REDIRECT,), scopes=("openid", "profile", "address"))
    edited = DevSubject("u", {}, trust_framework=None, unverified_claims=CLAIMS)
    with DevOidcProvider([no_scope], edited) as p:
        rp = rp_for(p, **kw)
        pending, callback = login(rp)
        assert rp.complete(pending, callback, now=now()).match_key is None


def test_acr_below_the_configured_minimum_is_refused() -> None:
    for acr in ("urn:tvote:dev:acr:low", None):
        with pytest.raises(OidcError) as ei:
            login_as_subject(DevSubject("u", CLAIMS, acr=acr))
        assert ei.value.code == "oidc.acr"
    high = DevSubject("u", CLAIMS, acr="urn:high")
    assert login_as_subject(high, acr_values=("urn:sub", "urn:high")).match_key == MY_KEY


def test_stale_authentication_is_refused(provider) -> None:
    with pytest.raises(OidcError) as ei:
        login_as_subject(DevSubject("u", CLAIMS, auth_age=3600))
    assert ei.value.code == "oidc.auth_time"
    assert login_as_subject(DevSubject("u", CLAIMS, auth_age=3600), max_auth_age=7200).match_key == MY_KEY
    rp, salt = rp_for(provider), b"\x06" * 32
    token = mint(provider, salt)
    tok = jwt.decode(token, provider.signing_key).claims
    del tok["auth_time"]
    no_auth_time = jwt.encode({"alg": "RS256", "kid": provider.signing_key.kid}, tok, provider.signing_key)
    expect("oidc.auth_time", verify, rp, no_auth_time, salt)


def test_provider_config_is_validated() -> None:
    for kw in (
        {"acr_values": ()},
        {"trust_frameworks": ()},
        {"acr_values": "urn:x"},
        {"claims_source": "verified_scope"},
        {"claims_source": "verified_scope", "verified_scope": "openid"},
        {"claims_source": "top_level"},
        {"max_auth_age": 0},
    ):
        with pytest.raises(OidcError) as ei:
            config("https://id.example", **kw)
        assert ei.value.code == "oidc.config", kw


# -------------------------------------------------------------------------------------- JWKS key rotation


def test_key_rotation_refreshes_the_jwks_rate_limited() -> None:
    clock = [1000.0]
    with DevOidcProvider([CLIENT_A], DevSubject("user-123", CLAIMS)) as p:
        rp = OidcRelyingParty(config(p.issuer), ROLL_KEY, jwks_min_refresh=60, monotonic=lambda: clock[0])
        pending, callback = login(rp)
        old, old_salt = rp.complete(pending, callback, now=now()), pending.nonce_salt
        assert p.jwks_requests == 1
        # a token under an invented kid soon after: refused, and the provider is not asked again
        clock[0] += 10
        rogue = RSAKey.generate_key(2048, {"use": "sig"}, auto_kid=True)
        salt = b"\x09" * 32
        claims = jwt.decode(mint(p, salt), p.signing_key).claims
        invented = jwt.encode({"alg": "RS256", "kid": rogue.kid}, claims, rogue)
        for _ in range(5):
            expect("oidc.signature", verify, rp, invented, salt)
        assert p.jwks_requests == 1
        # the provider rotates its key mid-election: the next voter is not locked out
        clock[0] += 100
        p.rotate_key()
        pending, callback = login(rp)
        assert rp.complete(pending, callback, now=now()).match_key == MY_KEY
        assert p.jwks_requests == 2
        # the new key is cached; a flood of invented kids costs at most one fetch per interval
        clock[0] += 1
        for _ in range(5):
            expect("oidc.signature", verify, rp, invented, salt)
        assert p.jwks_requests == 2
        clock[0] += 60
        expect("oidc.signature", verify, rp, invented, salt)
        expect("oidc.signature", verify, rp, invented, salt)
        assert p.jwks_requests == 3
        # a token under the old key, withdrawn from the JWKS, is refused
        expect(
            "oidc.signature",
            rp.verify_id_token,
            old.evidence.id_token,
            election_base_hash=BASE,
            ballot_hash=BALLOT,
            nonce_salt=old_salt,
            now=now(),
        )

"""A local emulator of the Digital Authentication App service (デジタル認証アプリ), with test cards.

NEVER for a real election: the tests, ``tools/`` and the demo use it in place of the Digital Agency's
service. It serves, on loopback, the same API that :class:`voting.auth.DigitalAuthAppClient` speaks
(``docs/authentication.md``, "My Number card on the phone"):

* ``POST /api/realms/main/protocol/openid-connect/token``: the client-credentials grant with a
  ``private_key_jwt`` client assertion (RS256, ``iss`` = ``sub`` = client id, ``aud`` = this endpoint, a
  ``jti`` used once, unexpired), checked against the public key registered with :meth:`register_client`;
* ``POST /api/sign-transactions``, ``GET /api/sign-transactions/{id}``, ``GET .../{id}/result``;
* ``GET /api/realms/main/protocol/openid-connect/auth?...&sign_transaction_id=…``: the "phone", an HTML page
  (no script) where a test card is chosen and its signing PIN entered, then Approve or Refuse (a form
  ``POST /phone/approve``); a browser test drives it like a resident would. The same step as JSON, for tests
  and the demo: ``POST /phone/sign-transactions/{id}/approve`` ``{"card", "pin"}`` and ``.../refuse``.

Cards (:meth:`insert_card`) are :class:`voting.testing.TestCard` s of the JPKI test CA: they sign with their
own keys, the ``DigestInfo`` the service submitted, with PKCS#1 v1.5 padding, as the card's signing
application does. The signing PIN follows the JPKI rules: 6 to 16 letters and digits (anything else is
refused before it reaches the card and costs no try); 5 wrong PINs in a row lock the card (``423``); each
wrong answer reports the tries left; a right one resets the count.

Hooks for attack tests: :attr:`DappEmulator.result_override` replaces the result answer (a callable given
the honest answer, returning a dict sent as JSON or bytes sent raw); :meth:`advance` moves the emulator's
clock (expiry).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import html
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from joserfc import jwt
from joserfc.jwk import RSAKey

from voting.auth import (
    DAPP_AUTHORIZATION_PATH,
    DAPP_CLIENT_ASSERTION_TYPE,
    DAPP_SIGN_TRANSACTIONS_PATH,
    DAPP_TOKEN_PATH,
    SHA256_DIGEST_INFO_PREFIX,
)

from ._loopback import LoopbackServer
from ._testca import TestCard

__all__ = ["DAPP_TEST_PIN", "DappEmulator"]

#: the signing PIN the demo gives every test card it inserts (JPKI rules: 6 to 16 letters and digits)
DAPP_TEST_PIN: Final[str] = "TVOTE2027"
_PIN_RE: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9]{6,16}")
_MAX_TRIES: Final[int] = 5


@dataclass
class _Card:
    card: TestCard
    pin: str
    label: str
    tries_left: int = _MAX_TRIES


@dataclass
class _Tx:
    id: str
    client_id: str
    digest_info: bytes
    state: str
    expires_at: dt.datetime
    status: str = "pending"
    card_id: str | None = None
    signature: bytes | None = None
    #: the signing card's certificate, kept with the signature (the card may be ejected afterwards)
    certificate: bytes | None = None


def _json(status: int, body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=status)


class DappEmulator:
    """The emulated app service. ``start()`` returns its base URL; ``stop()`` shuts it down (the app is
    then "down": connections are refused). ``ttl`` is how long a transaction waits for the resident."""

    def __init__(self, *, ttl: dt.timedelta = dt.timedelta(minutes=5)) -> None:
        self.ttl = ttl
        self.result_override: Callable[[dict[str, Any]], dict[str, Any] | bytes] | None = None
        self._offset = dt.timedelta()
        self._lock = threading.Lock()
        self._clients: dict[str, RSAKey] = {}
        self._cards: dict[str, _Card] = {}
        self._inserted = 0
        self._txs: dict[str, _Tx] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._jtis: set[str] = set()
        self._server: LoopbackServer | None = None
        self.url = ""
        self.app = self._build()

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Listen on loopback (again on the same port after :meth:`stop`: the app "comes back")."""
        port = urlsplit(self.url).port or 0 if self.url else 0
        self._server = LoopbackServer(self.app, port=port)
        self.url = self._server.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None

    def __enter__(self) -> DappEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------ test setup

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self._offset

    def advance(self, delta: dt.timedelta) -> None:
        """Move the emulator's clock forward (transactions expire by it)."""
        self._offset += delta

    def register_client(self, client_id: str, public_key: rsa.RSAPublicKey) -> None:
        """Register a service (relying party) and the public key of its ``private_key_jwt`` assertions."""
        pem = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._clients[client_id] = RSAKey.import_key(pem)

    def insert_card(self, card: TestCard, pin: str = DAPP_TEST_PIN, label: str = "") -> str:
        """Make ``card`` available to the "phone" with its signing ``pin``; returns the card's id."""
        if not _PIN_RE.fullmatch(pin):
            raise ValueError("a JPKI signing PIN is 6 to 16 letters and digits")
        self._inserted += 1  # ids are never reused, even after an ejection
        card_id = f"card-{self._inserted}"
        self._cards[card_id] = _Card(card, pin, label or card_id)
        return card_id

    def eject_card(self, card_id: str) -> None:
        """Take ``card_id`` out of the "phone": it is offered no more and cannot approve (a transaction it
        approved before keeps its signature). Unknown ids raise :class:`KeyError`."""
        with self._lock:
            del self._cards[card_id]

    def revoke_tokens(self) -> None:
        """Forget every access token issued (a service whose token is revoked early must fetch a new one)."""
        with self._lock:
            self._tokens.clear()

    def tries_left(self, card_id: str) -> int:
        return self._cards[card_id].tries_left

    @staticmethod
    def transaction_of(app_url: str) -> str:
        """The sign-transaction id in an app address (the authorization URL the service built)."""
        ids = parse_qs(urlsplit(app_url).query).get("sign_transaction_id", [])
        if len(ids) != 1:
            raise ValueError("not an app address with one sign_transaction_id")
        return ids[0]

    def approve(self, app_url: str, card_id: str, pin: str = DAPP_TEST_PIN) -> dict[str, Any]:
        """What the resident does on the phone, over HTTP: approve the transaction of ``app_url`` with the
        card and its PIN. Returns the emulator's JSON answer (``status`` or ``error`` with ``tries_left``)."""
        import httpx

        tx = self.transaction_of(app_url)
        r = httpx.post(f"{self.url}/phone/sign-transactions/{tx}/approve", json={"card": card_id, "pin": pin})
        answer: dict[str, Any] = r.json()
        return answer

    def refuse(self, app_url: str) -> dict[str, Any]:
        import httpx

        tx = self.transaction_of(app_url)
        answer: dict[str, Any] = httpx.post(f"{self.url}/phone/sign-transactions/{tx}/refuse").json()
        return answer

    # -------------------------------------------------------------------------------------- the logic

    def _status(self, tx: _Tx) -> str:
        if tx.status == "pending" and self.now() >= tx.expires_at:
            tx.status = "expired"
        return tx.status

    def _client_of(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        held = self._tokens.get(auth[7:].strip())
        if held is None or held[1] <= time.monotonic():
            return None
        return held[0]

    def _token(self, form: dict[str, list[str]]) -> JSONResponse:
        def one(name: str) -> str:
            v = form.get(name, [])
            return v[0] if len(v) == 1 else ""

        if (
            one("grant_type") != "client_credentials"
            or one("client_assertion_type") != DAPP_CLIENT_ASSERTION_TYPE
        ):
            return _json(400, {"error": "unsupported_grant_type"})
        assertion = one("client_assertion")
        try:
            header = json.loads(base64.urlsafe_b64decode(assertion.split(".")[0] + "==="))
            unverified = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "==="))
            key = self._clients[str(unverified["iss"])]
            if header.get("alg") != "RS256":
                raise ValueError("alg")
            token = jwt.decode(assertion, key, algorithms=["RS256"])
            claims = token.claims
            client_id = str(claims["iss"])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": client_id},
                sub={"essential": True, "value": client_id},
                aud={"essential": True, "value": self.url + DAPP_TOKEN_PATH},
                exp={"essential": True},
                jti={"essential": True},
            ).validate(claims)
            if one("client_id") not in ("", client_id):
                raise ValueError("client_id")
        except Exception:  # any malformed or unverifiable assertion: the client is not authenticated
            return _json(401, {"error": "invalid_client"})
        with self._lock:
            if claims["jti"] in self._jtis:
                return _json(401, {"error": "invalid_client", "error_description": "jti replayed"})
            self._jtis.add(claims["jti"])
            access = secrets.token_urlsafe(32)
            self._tokens[access] = (client_id, time.monotonic() + 300)
        return _json(200, {"access_token": access, "token_type": "Bearer", "expires_in": 300})

    def _start(self, client_id: str, body: Any) -> JSONResponse:
        if not isinstance(body, dict) or set(body) != {"hash_algorithm", "digest_info", "state"}:
            return _json(400, {"error": "invalid_request"})
        try:
            di = base64.b64decode(str(body["digest_info"]), validate=True)
        except (binascii.Error, ValueError):
            return _json(400, {"error": "invalid_request", "error_description": "digest_info is not base64"})
        if (
            body["hash_algorithm"] != "SHA-256"
            or len(di) != 51
            or not di.startswith(SHA256_DIGEST_INFO_PREFIX)
        ):
            return _json(400, {"error": "invalid_request", "error_description": "not a SHA-256 DigestInfo"})
        state = body["state"]
        if not isinstance(state, str) or not 1 <= len(state) <= 255:
            return _json(400, {"error": "invalid_request", "error_description": "state"})
        tx = _Tx(str(uuid.uuid4()), client_id, di, state, (self.now() + self.ttl).replace(microsecond=0))
        with self._lock:
            self._txs[tx.id] = tx
        return _json(
            201, {"sign_transaction_id": tx.id, "expires_at": tx.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
        )

    def _tx_for(self, client_id: str, tx_id: str) -> _Tx | None:
        tx = self._txs.get(tx_id)
        return tx if tx is not None and tx.client_id == client_id else None

    def _result(self, tx: _Tx) -> Response:
        status = self._status(tx)
        if status != "approved":
            return _json(409, {"status": status})
        assert tx.signature is not None and tx.certificate is not None
        honest: dict[str, Any] = {
            "sign_transaction_id": tx.id,
            "hash_algorithm": "SHA-256",
            "digest_info": base64.b64encode(tx.digest_info).decode(),
            "signature": base64.b64encode(tx.signature).decode(),
            "certificate": base64.b64encode(tx.certificate).decode(),
            "intermediates": [],
        }
        answer = self.result_override(honest) if self.result_override is not None else honest
        if isinstance(answer, bytes):
            return Response(answer, status_code=200, media_type="application/json")
        return _json(200, answer)

    def _approve(self, tx_id: str, card_id: str, pin: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            tx = self._txs.get(tx_id)
            if tx is None:
                return 404, {"error": "transaction.unknown"}
            if self._status(tx) != "pending":
                return 409, {"error": f"transaction.{tx.status}"}
            card = self._cards.get(card_id)
            if card is None:
                return 404, {"error": "card.unknown"}
            if card.tries_left == 0:
                return 423, {"error": "card.locked", "tries_left": 0}
            if not _PIN_RE.fullmatch(pin):
                return 400, {"error": "pin.format", "tries_left": card.tries_left}
            if not secrets.compare_digest(pin, card.pin):
                card.tries_left -= 1
                if card.tries_left == 0:
                    return 423, {"error": "card.locked", "tries_left": 0}
                return 403, {"error": "pin.wrong", "tries_left": card.tries_left}
            card.tries_left = _MAX_TRIES
            digest = tx.digest_info[len(SHA256_DIGEST_INFO_PREFIX) :]
            tx.signature = card.card.private_key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
            tx.card_id, tx.certificate, tx.status = card_id, card.card.certificate_der, "approved"
            return 200, {"status": "approved"}

    def _refuse(self, tx_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            tx = self._txs.get(tx_id)
            if tx is None:
                return 404, {"error": "transaction.unknown"}
            if self._status(tx) != "pending":
                return 409, {"error": f"transaction.{tx.status}"}
            tx.status = "refused"
            return 200, {"status": "refused"}

    # ------------------------------------------------------------------------------------ the phone page

    def _page(self, q: dict[str, list[str]], message: str = "") -> HTMLResponse:
        def one(name: str) -> str:
            v = q.get(name, [])
            return v[0] if len(v) == 1 else ""

        tx = self._txs.get(one("sign_transaction_id"))
        if tx is None or one("client_id") != tx.client_id or "sign" not in one("scope").split():
            return HTMLResponse(
                self._html("署名できません / Cannot sign", "<p>Unknown signing request.</p>"), 400
            )
        options = "".join(
            f'<option value="{html.escape(cid)}">{html.escape(c.label)}</option>'
            for cid, c in self._cards.items()
        )
        hidden = "".join(
            f'<input type="hidden" name="{n}" value="{html.escape(one(n))}">'
            for n in ("sign_transaction_id", "redirect_uri", "state")
        )
        body = (
            f'<p role="status">{html.escape(message)}</p>'
            f"<p>A service asks you to sign with your My Number card (transaction {html.escape(tx.id)}).</p>"
            f'<form method="post" action="/phone/approve">{hidden}'
            f'<label for="card">Card</label> <select id="card" name="card">{options}</select> '
            '<label for="pin">Signing PIN (6-16 letters and digits)</label> '
            '<input id="pin" name="pin" type="password" autocomplete="off" maxlength="16"> '
            '<button type="submit" name="action" value="approve">Approve / 署名する</button> '
            '<button type="submit" name="action" value="refuse">Refuse / 署名しない</button></form>'
        )
        return HTMLResponse(self._html("署名 / Sign (emulator)", body))

    @staticmethod
    def _html(title: str, body: str) -> str:
        return (
            f'<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
            f"<body><main><h1>{html.escape(title)}</h1>"
            "<p><strong>Digital Authentication App EMULATOR: test cards only.</strong></p>"
            f"{body}</main></body></html>"
        )

    def _phone_form(self, form: dict[str, list[str]]) -> HTMLResponse:
        def one(name: str) -> str:
            v = form.get(name, [])
            return v[0] if len(v) == 1 else ""

        tx_id = one("sign_transaction_id")
        if one("action") == "refuse":
            status, answer = self._refuse(tx_id)
        else:
            status, answer = self._approve(tx_id, one("card"), one("pin"))
        if status != 200:
            tries = f" ({answer['tries_left']} tries left)" if "tries_left" in answer else ""
            q = {k: [one(k)] for k in ("sign_transaction_id", "redirect_uri", "state")}
            tx = self._txs.get(tx_id)
            if tx is not None:
                q["client_id"], q["scope"] = [tx.client_id], ["openid sign"]
            page = self._page(q, f"{answer['error']}{tries}")
            page.status_code = status
            return page
        back = one("redirect_uri")
        link = ""
        if back.startswith(("http://", "https://")):
            target = back + ("&" if "?" in back else "?") + urlencode({"state": one("state")})
            link = f'<p><a href="{html.escape(target)}">Return to the service</a></p>'
        done = "Signed." if answer["status"] == "approved" else "Refused."
        return HTMLResponse(self._html(done, f'<p role="status">{done}</p>{link}'))

    # ----------------------------------------------------------------------------------------- routes

    def _build(self) -> FastAPI:
        app = FastAPI(
            title="Digital Authentication App EMULATOR", docs_url=None, redoc_url=None, openapi_url=None
        )
        unauthorized = _json(401, {"error": "invalid_token"})

        @app.post(DAPP_TOKEN_PATH)
        async def token(request: Request) -> Response:
            return self._token(parse_qs((await request.body()).decode("utf-8", "replace")))

        @app.post(DAPP_SIGN_TRANSACTIONS_PATH)
        async def start(request: Request) -> Response:
            client = self._client_of(request)
            if client is None:
                return unauthorized
            try:
                body = json.loads(await request.body())
            except ValueError:
                return _json(400, {"error": "invalid_request"})
            return self._start(client, body)

        @app.get(DAPP_SIGN_TRANSACTIONS_PATH + "/{tx_id}")
        def status(tx_id: str, request: Request) -> Response:
            client = self._client_of(request)
            if client is None:
                return unauthorized
            tx = self._tx_for(client, tx_id)
            if tx is None:
                return _json(404, {"error": "not_found"})
            return _json(200, {"sign_transaction_id": tx.id, "status": self._status(tx)})

        @app.get(DAPP_SIGN_TRANSACTIONS_PATH + "/{tx_id}/result")
        def result(tx_id: str, request: Request) -> Response:
            client = self._client_of(request)
            if client is None:
                return unauthorized
            tx = self._tx_for(client, tx_id)
            if tx is None:
                return _json(404, {"error": "not_found"})
            return self._result(tx)

        @app.get(DAPP_AUTHORIZATION_PATH)
        def phone_page(request: Request) -> Response:
            return self._page(parse_qs(request.url.query))

        @app.post("/phone/approve")
        async def phone_form(request: Request) -> Response:
            return self._phone_form(parse_qs((await request.body()).decode("utf-8", "replace")))

        @app.post("/phone/sign-transactions/{tx_id}/approve")
        async def phone_approve(tx_id: str, request: Request) -> Response:
            try:
                body = json.loads(await request.body())
                card, pin = str(body["card"]), str(body["pin"])
            except (ValueError, KeyError, TypeError):
                return _json(400, {"error": "invalid_request"})
            return _json(*self._approve(tx_id, card, pin))

        @app.post("/phone/sign-transactions/{tx_id}/refuse")
        def phone_refuse(tx_id: str) -> Response:
            return _json(*self._refuse(tx_id))

        return app

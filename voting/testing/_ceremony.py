"""The whole key ceremony and the decryption in one process, for the tests and the demo: every trustee of
the election is a :class:`voting.clients.trustee.Trustee` here, talking to the server through any
``httpx.Client`` (a FastAPI ``TestClient`` or a real connection on loopback). In a real election each
trustee runs ``tvote trustee …`` on its own machine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from voting.clients._http import read_error
from voting.clients.trustee import ApiError, Trustee, TrusteeApi

__all__ = ["run_decryption", "run_key_ceremony"]


def _admin(http: httpx.Client, admin_token: str, path: str) -> Any:
    r = http.post("/api/v1/admin" + path, headers={"Authorization": f"Bearer {admin_token}"})
    if r.status_code >= 400:
        code, message, _ = read_error(r)
        raise ApiError(r.status_code, code, message)
    return r.json()


def run_key_ceremony(
    http: httpx.Client,
    invitations: Mapping[int, str],
    *,
    admin_token: str,
    names: Mapping[int, str] | None = None,
    finalize: bool = True,
    enrolment_keys: Mapping[int, bytes] | None = None,
) -> dict[int, Trustee]:
    """Run the whole key ceremony in-process: every trustee registers (signed with its enrolment key, from
    ``enrolment_keys``, when the manifest pins them), deals, verifies, answers; the admin publishes the joint
    key; every trustee computes its key share. Returns the trustees by index."""
    api = TrusteeApi(http)
    trustees: dict[int, Trustee] = {}
    for i, code in sorted(invitations.items()):
        t = Trustee.init(
            api, code, (names or {}).get(i, f"Trustee {i}"), enrolment_key=(enrolment_keys or {}).get(i)
        )
        t.register(http)
        trustees[i] = t
    for t in trustees.values():
        t.deal(http)
    for t in trustees.values():
        t.verify_shares(http)
    for t in trustees.values():
        t.answer_complaints(http)
    if finalize:
        _admin(http, admin_token, "/key-ceremony/finalize")
        for t in trustees.values():
            t.finalize(http)
    return trustees


def run_decryption(
    http: httpx.Client, trustees: Iterable[Trustee], *, log_key: str | None = None
) -> dict[int, dict[str, Any]]:
    """The given (present) trustees each check the tally against the ledger and submit their partial
    decryptions (:meth:`Trustee.decrypt`); returns the server's answers."""
    return {t.index: t.decrypt(http, log_key=log_key) for t in trustees}

"""The trustee side: an HTTP client for the trustee routes, the trustee's state, and its secret file.

A trustee runs on its own machine (``tvote trustee …``, :mod:`voting._cli_trustee`) and talks to the server
only over HTTP. Its secrets (polynomial coefficients, X25519 key, received shares, final key share, the
per-trustee bearer token) never leave the machine; at rest they are in a passphrase-protected file
(:mod:`voting.clients._secret_file`, format ``tvote-trustee-secret/1``) whose plaintext is the UTF-8 JSON
of :meth:`Trustee.to_dict` (format ``tvote-trustee-state/1``).

Before it decrypts, a trustee checks the tally against the ledger (:meth:`Trustee.decrypt`,
:mod:`voting._tally_check`). The whole ceremony with every trustee in one process (tests, the demo) is
:func:`voting.testing.run_key_ceremony`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from crypto import (
    Ciphertext,
    Complaint,
    EncryptedShare,
    JointKey,
    Scalar,
    ThresholdError,
    TrusteeCommitments,
    TrusteeEnrolment,
    TrusteeKey,
    TrusteeKeyGen,
)

from ._http import read_error
from ._secret_file import (
    ENROLMENT_FILE_FORMAT,
    SECRET_FILE_FORMAT,
    KdfLimits,
    TrusteeFileError,
    create_enrolment_key,
    enrolment_public_key,
    read_enrolment_key,
    read_secret_file,
    secret_file_limits,
    write_secret_file,
)

__all__ = [
    "ENROLMENT_FILE_FORMAT",
    "SECRET_FILE_FORMAT",
    "ApiError",
    "KdfLimits",
    "Trustee",
    "TrusteeApi",
    "TrusteeFileError",
    "TrusteeStateError",
    "client_for",
    "create_enrolment_key",
    "enrolment_public_key",
    "read_enrolment_key",
    "read_secret_file",
    "write_secret_file",
]

STATE_FORMAT: Final[str] = "tvote-trustee-state/1"


class TrusteeStateError(ValueError):
    """This trustee cannot do that now (already registered, ceremony unfinished, ...): ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


class ApiError(Exception):
    """The server answered with an error ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(f"HTTP {status} {code}: {message}")


def _answer(r: httpx.Response) -> Any:
    """The JSON body of a success; :class:`ApiError` for an error answer."""
    if r.status_code >= 400:
        code, message, _ = read_error(r)
        raise ApiError(r.status_code, code, message)
    return r.json()


# ----------------------------------------------------------------------------------------------- HTTP API


class TrusteeApi:
    """Thin typed wrapper around the HTTP routes a trustee uses. ``http`` has the server as ``base_url``."""

    def __init__(self, http: httpx.Client, token: str | None = None) -> None:
        self.http = http
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return _answer(self.http.request(method, "/api/v1" + path, json=body, headers=self._headers()))

    def election(self) -> dict[str, Any]:
        return dict(self._call("GET", "/election"))

    def ceremony(self) -> dict[str, Any]:
        return dict(self._call("GET", "/election/ceremony"))

    def register(
        self,
        invitation: str,
        name: str,
        commitments: Mapping[str, Any],
        enrolment: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"invitation": invitation, "name": name, "commitments": dict(commitments)}
        if enrolment is not None:
            body["enrolment"] = dict(enrolment)
        return dict(self._call("POST", "/trustee/register", body))

    def deal(self, shares: list[dict[str, Any]]) -> int:
        return int(self._call("POST", "/trustee/shares", {"shares": shares})["ledger_index"])

    def my_shares(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/trustee/shares")["shares"])

    def complain(self, complaint: Mapping[str, Any]) -> int:
        return int(self._call("POST", "/trustee/complaints", {"complaint": dict(complaint)})["ledger_index"])

    def complaints(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/trustee/complaints")["complaints"])

    def answer(self, answer: Mapping[str, Any]) -> int:
        return int(self._call("POST", "/trustee/answers", {"answer": dict(answer)})["ledger_index"])

    def tally(self) -> dict[str, Any]:
        return dict(self._call("GET", "/election/tally"))

    def submit_partials(self, partials: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/trustee/partials", {"partials": dict(partials)}))


# ------------------------------------------------------------------------------------------------ trustee


@dataclass
class Trustee:
    """One trustee's state. SECRET: keep it in a secret file (:meth:`save`), never print it."""

    index: int
    name: str
    election_id: str
    base_hash: str
    keygen: TrusteeKeyGen = field(repr=False)
    token: str | None = field(default=None, repr=False)
    invitation: str | None = field(default=None, repr=False)
    received: dict[int, Scalar] = field(default_factory=dict, repr=False)
    complained: list[int] = field(default_factory=list)
    key: TrusteeKey | None = field(default=None, repr=False)
    #: the enrolment key's Ed25519 seed (its public key is pinned in the manifest), if the election pins one
    enrolment_key: bytes | None = field(default=None, repr=False)
    #: key-derivation limits used when saving (those of the file it was loaded from, if any)
    limits: KdfLimits | None = field(default=None, repr=False, compare=False)

    # ---------------------------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "index": self.index,
            "name": self.name,
            "election_id": self.election_id,
            "base_hash": self.base_hash,
            "keygen": self.keygen.to_dict(),
            "token": self.token,
            "invitation": self.invitation,
            "received": {str(i): s.hex() for i, s in sorted(self.received.items())},
            "complained": list(self.complained),
            "key": self.key.to_dict() if self.key else None,
            "enrolment_key": self.enrolment_key.hex() if self.enrolment_key else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Trustee:
        if d.get("format") != STATE_FORMAT:
            raise TrusteeFileError("unknown trustee state format")
        return cls(
            index=int(d["index"]),
            name=str(d["name"]),
            election_id=str(d["election_id"]),
            base_hash=str(d["base_hash"]),
            keygen=TrusteeKeyGen.from_dict(d["keygen"]),
            token=d.get("token"),
            invitation=d.get("invitation"),
            received={int(i): Scalar.from_hex(s) for i, s in d.get("received", {}).items()},
            complained=[int(i) for i in d.get("complained", [])],
            key=TrusteeKey.from_dict(d["key"]) if d.get("key") else None,
            enrolment_key=bytes.fromhex(d["enrolment_key"]) if d.get("enrolment_key") else None,
        )

    def save(self, path: str | Path, passphrase: str, limits: KdfLimits | None = None) -> None:
        if limits is not None:
            self.limits = limits
        write_secret_file(path, self.to_dict(), passphrase, self.limits)

    @classmethod
    def load(cls, path: str | Path, passphrase: str) -> Trustee:
        t = cls.from_dict(read_secret_file(path, passphrase))
        t.limits = secret_file_limits(path)
        return t

    # ----------------------------------------------------------------------------------- ceremony

    @classmethod
    def init(
        cls, api: TrusteeApi, invitation: str, name: str, *, enrolment_key: bytes | None = None
    ) -> Trustee:
        """Fetch the election, check the code's index, and generate this trustee's key material.
        ``enrolment_key``: the seed of the enrolment key whose public key the manifest pins for this index
        (registration is signed with it)."""
        try:
            index = int(invitation.split("-", 1)[0])
        except ValueError:
            raise TrusteeStateError(
                "trustee.invitation_format", "a registration code looks like '<index>-<secret>'"
            ) from None
        e = api.election()
        if not 1 <= index <= e["trustees"]:
            raise TrusteeStateError(
                "trustee.invitation_index",
                f"the registration code is for trustee {index}, the election has {e['trustees']}",
            )
        keygen = TrusteeKeyGen.generate(
            index, threshold=e["threshold"], trustees=e["trustees"], base_hash=bytes.fromhex(e["base_hash"])
        )
        return cls(
            index,
            name.strip(),
            e["election_id"],
            e["base_hash"],
            keygen,
            invitation=invitation,
            enrolment_key=enrolment_key,
        )

    def _api(self, http: httpx.Client) -> TrusteeApi:
        return TrusteeApi(http, self.token)

    def register(self, http: httpx.Client) -> None:
        if self.token is not None:
            raise TrusteeStateError(
                "trustee.registered",
                f"trustee {self.index} is already registered (its token is in the secret file)",
            )
        if self.invitation is None:
            raise TrusteeStateError("trustee.no_invitation", "the secret file holds no registration code")
        enrolment = None
        if self.enrolment_key is not None:  # the key pinned for this index (docs/protocol.md T3.0)
            enrolment = TrusteeEnrolment.sign(
                self.enrolment_key,
                base_hash=bytes.fromhex(self.base_hash),
                trustee=self.index,
                name=self.name,
                commitments=self.keygen.commitments,
            ).to_dict()
        out = TrusteeApi(http).register(
            self.invitation, self.name, self.keygen.commitments.to_dict(), enrolment
        )
        if out["trustee"] != self.index:  # pragma: no cover - the server checks this
            raise TrusteeStateError("trustee.index", "the server registered another index")
        self.token = out["token"]
        self.invitation = None  # one-time code: forget it

    def _commitments(self, ceremony: Mapping[str, Any]) -> dict[int, TrusteeCommitments]:
        return {
            t["index"]: TrusteeCommitments.from_dict(t["commitments"])
            for t in ceremony["trustees"]
            if t["commitments"] is not None
        }

    def deal(self, http: httpx.Client) -> int:
        """Encrypt ``P_i(j)`` for every other registered trustee ``j`` and publish the shares."""
        api = self._api(http)
        others = {j: c for j, c in self._commitments(api.ceremony()).items() if j != self.index}
        shares = [self.keygen.encrypt_share(c).to_dict() for _, c in sorted(others.items())]
        return api.deal(shares)

    def verify_shares(self, http: httpx.Client, *, complain_missing: bool = False) -> list[int]:
        """Decrypt and check every share sent to this trustee; complain publicly about each bad one (and,
        with ``complain_missing``, about each registered dealer that sent none: use it once the dealing
        deadline has passed). Returns the dealers complained about (empty if every share was good)."""
        api = self._api(http)
        ceremony = api.ceremony()
        commitments = self._commitments(ceremony)
        got = {s["sender"]: EncryptedShare.from_dict(s) for s in api.my_shares()}
        dealt = {t["index"] for t in ceremony["trustees"] if t["shares_dealt"]}
        bad: list[int] = []
        for i, c in sorted(commitments.items()):
            if i == self.index or i in self.received or i in self.complained:
                continue
            if i not in got:
                if complain_missing or i in dealt:
                    bad.append(i)
                continue
            try:
                self.received[i] = self.keygen.decrypt_share(got[i], c)
            except ThresholdError:
                bad.append(i)
        for i in bad:
            api.complain(self.keygen.complain(commitments[i]).to_dict())
            self.complained.append(i)
        return bad

    def answer_complaints(self, http: httpx.Client) -> int:
        """Answer every complaint against this trustee by revealing the disputed share."""
        api = self._api(http)
        n = 0
        for c in api.complaints():
            if c.get("answered"):
                continue
            complaint = Complaint.from_dict({k: c[k] for k in ("complainant", "dealer", "evidence")})
            api.answer(self.keygen.answer(complaint).to_dict())
            n += 1
        return n

    def finalize(self, http: httpx.Client) -> TrusteeKey:
        """After the joint key is published: compute this trustee's key share ``s_j`` (with shares revealed
        in complaint answers where the encrypted one was bad) and check it against the public share."""
        api = self._api(http)
        ceremony = api.ceremony()
        if ceremony["joint_key"] is None:
            raise TrusteeStateError("ceremony.unfinished", "the key ceremony has not finished")
        jk = JointKey.from_dict(ceremony["joint_key"])
        commitments = self._commitments(ceremony)
        revealed = {
            c["complaint"]["dealer"]: Scalar.from_hex(c["answer"]["share"])
            for c in ceremony["complaints"]
            if c["complaint"]["complainant"] == self.index and c["answer"] is not None
        }
        received = {i: self.received.get(i, revealed.get(i)) for i in jk.qualified if i != self.index}
        missing = [i for i, s in received.items() if s is None]
        if missing:
            raise TrusteeStateError("trustee.shares_missing", f"no valid share from dealers {missing}")
        key = self.keygen.finalize(
            {i: s for i, s in received.items() if s is not None}, [commitments[i] for i in jk.qualified]
        )
        if key.public_share != jk.public_share(self.index):
            raise TrusteeStateError(
                "trustee.share_mismatch", "this trustee's key share does not match the published public share"
            )
        self.key = key
        return key

    def decrypt(self, http: httpx.Client, *, log_key: str | None = None, workers: int = 1) -> dict[str, Any]:
        """Check the tally against the public ledger, then partially decrypt it, with proofs; submit.

        Nothing is decrypted on the server's word: :func:`voting._tally_check.check_tally` establishes the
        ``tally.encrypted`` entry from a signed (and, if the manifest names witnesses, cosigned) checkpoint
        and the entries under it, re-checked by the public verifier, and raises
        :class:`~voting._tally_check.TallyRefused` (nothing computed, nothing submitted) unless it holds.
        Only that entry's ciphertexts are decrypted. ``log_key``: the log's verifier key, if pinned."""
        from .._tally_check import check_tally

        if self.key is None:
            self.finalize(http)
        assert self.key is not None
        checked = check_tally(
            http, key=self.key, commitments=self.keygen.commitments, log_key=log_key, workers=workers
        )
        partials: dict[str, dict[str, Any]] = {}
        for contest, sels in checked.tally["ciphertexts"].items():
            for sel, ct in sels.items():
                partials.setdefault(contest, {})[sel] = self.key.partial_decrypt(
                    Ciphertext.from_dict(ct)
                ).to_dict()
        return self._api(http).submit_partials(partials)


def client_for(base_url: str, *, timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=timeout)

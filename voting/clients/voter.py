"""The voter client: what the voter's browser does, in Python (tests, the demo, scripted voting).

::

    client = VoterClient("https://vote.example.jp", log_key=LOG_VKEY)   # or transport=... for tests
    info = client.election()            # manifest, base hash (re-derived here), joint key
    ballot = client.prepare({"mayor": ["cand-2"], "referendum": ["yes"], "subsidy": []})
    print(ballot.tracking_code)         # shown to the voter before cast-or-challenge
    receipt = client.cast_jpki(card, ballot)          # My Number card signature (TestCard in tests)
    client.verify_receipt(receipt)      # inclusion proof, checkpoint signature, entry, consistency,
                                        # witness cosignatures (the manifest's quorum)

    opened = client.challenge({...})    # Benaloh: publish the opening, re-verify on a "second device"

Trust: the client re-derives the base hash from the manifest it is given and checks ballots locally
before sending them; given the election's ``base_hash`` obtained out of band (the commission publishes it
with the election), it refuses any other manifest. Receipts are checked against the log's public key (a
C2SP ``vkey``): ``log_key`` if the voter obtained it out of band, else the one the manifest pins
(``pins.log_key``, bound by the base hash), else (a manifest without pins, development) the key the server
announces, trusted on first use. ``key_source`` says which (``pinned``, ``manifest`` or ``server``); a
``log_key`` other than the manifest's pin is refused (``ElectionDataError``).

Split view: the log key is the server's own, so a dishonest server can sign two different ledgers and show
one to some voters and another to the auditors. What it cannot do is get both cosigned: each witness
checks that the log only grows before it cosigns. When the manifest names witnesses (quorum >= 1) the
client accepts a receipt only under a checkpoint cosigned by the manifest's quorum of witnesses (BLS
aggregate, the keys and their proofs of possession from the manifest, whose base hash the client
re-derives), and it checks every checkpoint it is shown against the largest one it has seen before
(same size: same root; otherwise an RFC 9162 consistency proof), so a fork shown to this device is
refused. A manifest with no witnesses (quorum 0, development) is accepted with the log signature alone;
``witnessed`` on the result says which it was.

Errors (one tree)::

    VoterClientError
    ├── ServerError          the server answered 4xx/5xx; ``status``, ``code``, ``message``
    ├── ElectionDataError    the election data from the server is inconsistent (base hash, key, manifest)
    ├── ReceiptError         a receipt does not verify; ``check`` names the failed check
    └── ChallengeError       a challenged ballot does not open to the voter's choices (cast-as-intended
                             failed: the device cheated), or the published opening does not verify

Length: one class, the voter's device, over 500 lines because its checks share state that must not be
split: the log key it settled on (pinned, manifest or server), the largest checkpoint it has seen (the fork
check) and the election it re-derived (base hash, witness policy). The pieces that are not that state live
beside it (:mod:`voting.receipt`, :mod:`voting.clients._http`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import httpx
import rfc8785

from crypto import (
    BallotSecrets,
    ContestSpec,
    CryptoError,
    ElectionContext,
    EncryptedBallot,
    Point,
    RevealedBallot,
    encrypt_ballot,
    reveal,
    tagged_sha256,
    verify_ballot,
    verify_revealed,
)
from ledger.merkle import verify_consistency, verify_inclusion
from ledger.record import (
    Checkpoint,
    CosignatureBundle,
    Entry,
    LedgerError,
    LogKey,
    SignedCheckpoint,
    WitnessKey,
    WitnessPolicy,
)

from ..receipt import Receipt
from ._http import read_error, tls_context

__all__ = [
    "ChallengeError",
    "ChallengeResult",
    "ElectionDataError",
    "ElectionInfo",
    "PreparedBallot",
    "Receipt",
    "ReceiptError",
    "ServerError",
    "VoterClient",
    "VoterClientError",
]

API = "/api/v1"


class VoterClientError(Exception):
    """Base of everything :mod:`voting.clients.voter` raises."""


class ServerError(VoterClientError):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(f"HTTP {status} {code}: {message}")


class ElectionDataError(VoterClientError):
    pass


class ReceiptError(VoterClientError):
    def __init__(self, check: str, message: str) -> None:
        self.check = check
        super().__init__(f"{check}: {message}")


class ChallengeError(VoterClientError):
    pass


@dataclass(frozen=True, slots=True)
class ElectionInfo:
    election_id: str
    manifest: Mapping[str, Any]
    base_hash: bytes
    context: ElectionContext
    phase: str
    auth_methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PreparedBallot:
    """An encrypted ballot and its secrets, kept on the device until cast (then dropped) or challenged."""

    ballot: EncryptedBallot
    secrets: BallotSecrets = field(repr=False)
    choices: Mapping[str, tuple[str, ...]] = field(repr=False)

    @property
    def ballot_hash(self) -> bytes:
        return self.ballot.ballot_hash()

    @property
    def tracking_code(self) -> str:
        return self.ballot.tracking_code()


@dataclass(frozen=True, slots=True)
class ChallengeResult:
    receipt: Receipt
    #: what the published opening decrypts to, as re-verified from the public record on a fresh client
    opened: Mapping[str, list[str]]


#: ``login(authorization_url) -> callback_url``: the part a real browser does at the digital-ID provider.
LoginFn = Callable[[str], str]


def _parse_vkey(text: str) -> LogKey:
    """The pinned log key in its ``<name>+<hex key id>+<base64 key>`` text form."""
    try:
        return LogKey.from_vkey(text)
    except LedgerError as e:
        raise ElectionDataError(f"the log key is not a valid verifier key: {e}") from e


def _parse_base_hash(value: str | bytes | None) -> bytes | None:
    """The election's base hash given out of band: 32 bytes, or 64 hex digits."""
    if value is None:
        return None
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else bytes(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ElectionDataError("the base hash given to the client is not 32 bytes (64 hex digits)")
    return raw


def _canonical_choices(choices: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    return {c: tuple(v) for c, v in choices.items()}


class VoterClient:
    """A voter's device talking to the election server's HTTP API (``/api/v1``).

    ``base_url`` is the server; ``transport`` an optional httpx transport (e.g. ``httpx.ASGITransport`` or a
    mock); ``log_key`` the log's verifier key (``LogKey`` or its ``vkey`` text). ``rng`` (an object with
    ``randbytes``) is for deterministic tests only. ``election`` pre-loads election data fetched earlier
    (it was checked then); ``self_check=False`` skips re-verifying the device's own ballots (the server
    verifies every ballot anyway).
    """

    def __init__(
        self,
        base_url: str = "http://testserver",
        *,
        transport: httpx.BaseTransport | None = None,
        log_key: LogKey | str | None = None,
        base_hash: str | bytes | None = None,
        timeout: float = 60.0,
        rng: Any | None = None,
        election: ElectionInfo | None = None,
        self_check: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._transport = transport
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url, transport=transport, timeout=timeout, verify=tls_context()
        )
        self._rng = rng
        self._info: ElectionInfo | None = election
        self._self_check = self_check
        self._log_key: LogKey | None = _parse_vkey(log_key) if isinstance(log_key, str) else log_key
        self.key_source: Literal["pinned", "manifest", "server"] = (
            "pinned" if log_key is not None else "server"
        )
        self._base_hash = _parse_base_hash(base_hash)
        self._policy: WitnessPolicy | None = None
        #: every checkpoint this device has verified: size -> root, and the largest (fork detection)
        self._seen: dict[int, bytes] = {}
        self._largest: Checkpoint | None = None
        #: cosignature bundles this device has verified (FastAggregateVerify costs about a second in py_ecc)
        self._cosigned_ok: set[tuple[str, str]] = set()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VoterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def second_device(self) -> VoterClient:
        """A fresh client (new connection, no cached election data), same server and pinned key."""
        return VoterClient(
            self.base_url,
            transport=self._transport,
            log_key=self._log_key if self.key_source == "pinned" else None,
            base_hash=self._base_hash,
            timeout=self._timeout,
        )

    # ------------------------------------------------------------------------------------------- HTTP

    def _call(
        self, method: str, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        r = self._http.request(method, API + path, json=json, headers=dict(headers or {}))
        if r.status_code >= 400:
            code, message, _ = read_error(r)
            raise ServerError(r.status_code, code, message)
        try:
            return r.json()
        except ValueError:
            raise ServerError(r.status_code, "response.malformed", f"{path} did not answer JSON") from None

    def _receipt(self, answer: Any) -> Receipt:
        """A receipt from a server's answer; ``ReceiptError`` ``receipt-shape`` for anything malformed."""
        try:
            return Receipt.from_dict(answer)
        except ValueError as e:
            raise ReceiptError("receipt-shape", f"the server's receipt is malformed: {e}") from e

    # --------------------------------------------------------------------------------------- election

    def election(self, *, refresh: bool = False) -> ElectionInfo:
        """Fetch the election, its manifest and joint key; re-derive and check the base hash."""
        if self._info is not None and not refresh:
            return self._info
        e = self._call("GET", "/election")
        m = self._call("GET", "/election/manifest")
        if not isinstance(e, dict) or not isinstance(m, dict) or not isinstance(m.get("manifest"), dict):
            raise ElectionDataError("the server's election data are not the documented objects")
        manifest = m["manifest"]
        try:
            base_hash = tagged_sha256("election-base-hash", rfc8785.dumps(manifest))
        except (rfc8785.CanonicalizationError, TypeError, ValueError) as err:
            raise ElectionDataError(f"the manifest is not canonicalizable JSON: {err}") from err
        if base_hash.hex() != m.get("base_hash") or base_hash.hex() != e.get("base_hash"):
            raise ElectionDataError("the manifest does not hash to the published base hash")
        if self._base_hash is not None and base_hash != self._base_hash:
            raise ElectionDataError(
                f"the server's election (base hash {base_hash.hex()}) is not the one this device was given "
                f"({self._base_hash.hex()})"
            )
        self._adopt_log_key_pin(manifest)
        if not e.get("joint_key"):
            raise ElectionDataError("the election has no joint key yet (key ceremony not finished)")
        jk = self._call("GET", "/election/joint-key")
        if not isinstance(jk, dict) or jk.get("joint_key") != e["joint_key"]:
            raise ElectionDataError("the joint key differs between /election and /election/joint-key")
        try:
            contests = tuple(
                ContestSpec(c["id"], tuple(s["id"] for s in c["selections"]), int(c["min"]), int(c["max"]))
                for c in manifest["contests"]
            )
            ctx = ElectionContext(base_hash, Point.from_hex(e["joint_key"]), contests)
            self._info = ElectionInfo(
                election_id=str(manifest["election_id"]),
                manifest=manifest,
                base_hash=base_hash,
                context=ctx,
                phase=str(e["phase"]),
                auth_methods=tuple(manifest.get("auth_methods", ())),
            )
        except (CryptoError, ValueError, KeyError, TypeError) as err:
            raise ElectionDataError(f"unusable election data: {err}") from err
        return self._info

    def prepare(self, choices: Mapping[str, Sequence[str]]) -> PreparedBallot:
        """Encrypt ``choices`` (contest id → chosen selection ids, ``[]`` for blank) on this device."""
        ctx = self.election().context
        full = {c.contest_id: list(choices.get(c.contest_id, ())) for c in ctx.contests}
        extra = set(choices) - set(full)
        if extra:
            raise ValueError(f"unknown contest(s): {sorted(extra)}")
        ballot, secrets = encrypt_ballot(ctx, full, rng=self._rng)
        if self._self_check:  # a device checks its own output before showing the tracking code
            verify_ballot(ctx, ballot)
        return PreparedBallot(ballot, secrets, _canonical_choices(full))

    def _prepared(self, choices: PreparedBallot | Mapping[str, Sequence[str]]) -> PreparedBallot:
        return choices if isinstance(choices, PreparedBallot) else self.prepare(choices)

    # ----------------------------------------------------------------------------------------- casting

    def cast_jpki(self, card: Any, choices: PreparedBallot | Mapping[str, Sequence[str]]) -> Receipt:
        """Cast with a My Number card: ``card.sign_ballot(base_hash, ballot_hash, challenge)`` returns a
        :class:`voting.auth.JpkiSubmission` (a :class:`voting.testing.TestCard` does; a real card reader
        would sign the same 116-byte message). (A polling-place kiosk casts through
        :class:`voting.clients.kiosk.KioskApi`, every request signed by its enrolled key.)"""
        p = self._prepared(choices)
        info = self.election()
        ch = bytes.fromhex(self._call("POST", "/voter/challenge")["challenge"])
        sub = card.sign_ballot(info.base_hash, p.ballot_hash, ch)
        auth = sub.auth_body(ch)
        body = {"ballot": p.ballot.to_dict(), "auth": auth}
        r = self._call("POST", "/voter/ballots", json=body)
        return self._check_receipt_shape(self._receipt(r), p, "cast")

    def cast_jpki_app(
        self,
        choices: PreparedBallot | Mapping[str, Sequence[str]],
        *,
        approve: Callable[[str], None],
        timeout: float = 300.0,
        poll: float = 0.5,
    ) -> Receipt:
        """Cast with the My Number card on the phone (the Digital Authentication App): a challenge, a signing
        transaction for this ballot (``POST /voter/jpki-app/start``), ``approve(app_url)`` (the resident opens
        the app there and approves with the card), the status polled until ``approved``, then the cast with
        ``auth: {"method": "jpki-app", "transaction"}``. Refused or expired: :class:`VoterClientError`."""
        p = self._prepared(choices)
        ch = self._call("POST", "/voter/challenge")["challenge"]
        start = self._call(
            "POST", "/voter/jpki-app/start", json={"ballot_hash": p.ballot_hash.hex(), "challenge": ch}
        )
        tx = start["transaction"]
        approve(start["app_url"])
        deadline = time.monotonic() + timeout
        while (status := self._call("GET", f"/voter/jpki-app/{tx}")["status"]) == "pending":
            if time.monotonic() > deadline:
                raise VoterClientError("the resident did not approve in the app in time")
            time.sleep(poll)
        if status != "approved":
            raise VoterClientError(f"the signing transaction is {status}, not approved")
        body = {"ballot": p.ballot.to_dict(), "auth": {"method": "jpki-app", "transaction": tx}}
        return self._check_receipt_shape(
            self._receipt(self._call("POST", "/voter/ballots", json=body)), p, "cast"
        )

    def cast_oidc(
        self,
        choices: PreparedBallot | Mapping[str, Sequence[str]],
        *,
        face: Mapping[str, Any],
        login: LoginFn | None = None,
    ) -> Receipt:
        """Cast with a digital ID: start a login bound to the ballot hash, let ``login`` take the browser
        through the provider (default: follow the provider's redirect without a login page, as the local
        development provider does), hand back code and state with the face-match sample."""
        p = self._prepared(choices)
        start = self._call("POST", "/voter/oidc/start", json={"ballot_hash": p.ballot_hash.hex()})
        callback = (login or self._follow_provider)(start["authorization_url"])
        q = parse_qs(urlsplit(callback).query)
        if q.get("state") != [start["state"]] or len(q.get("code", [])) != 1:
            raise VoterClientError("the digital-ID provider did not return a code for this login")
        body = {
            "ballot": p.ballot.to_dict(),
            "auth": {
                "method": "oidc+face",
                "state": start["state"],
                "code": q["code"][0],
                "face": dict(face),
            },
        }
        return self._check_receipt_shape(
            self._receipt(self._call("POST", "/voter/ballots", json=body)), p, "cast"
        )

    def _follow_provider(self, authorization_url: str) -> str:
        with httpx.Client(timeout=self._timeout, follow_redirects=False, verify=tls_context()) as browser:
            r = browser.get(authorization_url)
        if r.status_code not in (302, 303) or "location" not in r.headers:
            raise VoterClientError(f"the digital-ID provider answered {r.status_code}, not a redirect")
        return str(r.headers["location"])

    @staticmethod
    def _check_receipt_shape(r: Receipt, p: PreparedBallot, kind: str) -> Receipt:
        if r.kind != kind or r.ballot_hash != p.ballot_hash.hex() or r.tracking_code != p.tracking_code:
            raise ReceiptError("receipt-ballot", "the receipt names another ballot than the one sent")
        return r

    # ------------------------------------------------------------------------------------- challenging

    def challenge(self, choices: PreparedBallot | Mapping[str, Sequence[str]]) -> ChallengeResult:
        """Benaloh challenge: publish the ballot's opening (it is spoiled, never counted), then re-verify it
        from the public record on a second device and compare with what the voter chose. Raises
        :class:`ChallengeError` if the opening does not match the voter's choices."""
        p = self._prepared(choices)
        revealed = reveal(p.ballot, p.secrets)
        r = self._receipt(
            self._call(
                "POST", "/voter/spoil", json={"ballot": p.ballot.to_dict(), "revealed": revealed.to_dict()}
            )
        )
        self._check_receipt_shape(r, p, "spoiled")
        with self.second_device() as other:
            opened = other.audit_spoiled(p.tracking_code)
        intended = {c: sorted(v) for c, v in p.choices.items()}
        if {c: sorted(v) for c, v in opened.items()} != intended:
            raise ChallengeError("the challenged ballot does not encrypt the voter's choices")
        return ChallengeResult(r, opened)

    def audit_spoiled(self, tracking_code: str) -> dict[str, list[str]]:
        """The second device: find a spoiled ballot in the public record by tracking code, verify its
        receipt and opening against the election, and return what it decrypts to."""
        r = self.lookup(tracking_code)
        if r.kind != "spoiled":
            raise ChallengeError("this tracking code belongs to a cast ballot; only spoiled ballots open")
        # the opening is what a Benaloh challenge checks; the checkpoint need not be witnessed yet (witnesses
        # cosign later): its signature, the inclusion and the consistency with what this device saw are
        entry = self.verify_receipt(r, require_witnessed=False)
        p = entry.payload
        try:
            ballot = EncryptedBallot.from_dict(p["ballot"])
            opened = verify_revealed(self.election().context, ballot, RevealedBallot.from_dict(p["revealed"]))
        except (CryptoError, KeyError, ValueError) as e:
            raise ChallengeError(f"the published opening does not verify: {e}") from e
        return opened

    # ---------------------------------------------------------------------------------------- receipts

    def lookup(self, tracking_code: str) -> Receipt:
        """A fresh receipt for a tracking code (proof against the server's latest checkpoint)."""
        return self._receipt(self._call("GET", f"/voter/ballots/{tracking_code}"))

    def complete_receipt(self, receipt: Receipt, *, timeout: float = 30.0, poll: float = 0.25) -> Receipt:
        """A pending receipt (checkpoints on a schedule) with its checkpoint and inclusion proof: fetched
        again until a checkpoint covers the entry, at most ``timeout`` seconds (``ReceiptError``
        ``receipt-pending`` after that). The fetched receipt must name the same entry and ballot
        (``receipt-ballot``). A complete receipt is returned as it is; verify it with
        :meth:`verify_receipt`."""
        if not receipt.pending:
            return receipt
        deadline = time.monotonic() + timeout
        while True:
            fresh = self.lookup(receipt.tracking_code)
            same = (fresh.kind, fresh.leaf_index, fresh.entry_hash, fresh.ballot_hash, fresh.tracking_code)
            if same != (
                receipt.kind,
                receipt.leaf_index,
                receipt.entry_hash,
                receipt.ballot_hash,
                receipt.tracking_code,
            ):
                raise ReceiptError("receipt-ballot", "the server's receipt names another entry than ours")
            if not fresh.pending:
                return fresh
            if time.monotonic() >= deadline:
                raise ReceiptError(
                    "receipt-pending", f"no checkpoint covers entry {receipt.leaf_index} after {timeout:g} s"
                )
            time.sleep(poll)

    def _adopt_log_key_pin(self, manifest: Any) -> None:
        """The manifest's ``pins.log_key``: refuse a log key given to this device that differs from it, and
        take it when none was given."""
        pins = manifest.get("pins") if isinstance(manifest, dict) else None
        text = pins.get("log_key") if isinstance(pins, dict) else None
        if text is None:
            return
        if not isinstance(text, str):
            raise ElectionDataError("the manifest's pins.log_key is not a verifier key")
        pinned = _parse_vkey(text)
        if self._log_key is None:
            self._log_key, self.key_source = pinned, "manifest"
        elif self._log_key != pinned:
            raise ElectionDataError(
                f"the manifest pins the log key {pinned.vkey}, not the one this device was given "
                f"({self._log_key.vkey})"
            )

    def log_key(self) -> LogKey:
        """The log key given to this device, else the manifest's ``pins.log_key``, else (trust on first use,
        a manifest without pins) the one the server announces."""
        if self._log_key is None:
            self._adopt_log_key_pin(self.election().manifest)
        if self._log_key is None:
            self._log_key = _parse_vkey(self._call("GET", "/ledger/witnesses")["log_key"])
        return self._log_key

    def entry(self, index: int) -> Entry:
        """One entry of the public ledger, parsed strictly (canonical bytes)."""
        d = self._call("GET", f"/ledger/entries?start={index}&stop={index + 1}")
        try:
            (e,) = d["entries"]
            return Entry.from_bytes(e["entry"].encode("utf-8"))
        except (ValueError, KeyError, TypeError) as e:
            raise ReceiptError("entry-encoding", f"entry {index} from the server does not parse: {e}") from e

    def witness_policy(self) -> WitnessPolicy:
        """The manifest's witnesses (BLS keys, each with its proof of possession checked) and quorum."""
        if self._policy is None:
            w = self.election().manifest.get("witnesses", {"quorum": 0, "keys": []})
            try:
                keys = tuple(
                    WitnessKey(k["name"], bytes.fromhex(k["bls_public_key"]), bytes.fromhex(k["pop"]))
                    for k in w["keys"]
                )
                self._policy = WitnessPolicy(keys, w["quorum"])
            except (LedgerError, KeyError, TypeError, ValueError) as e:
                raise ElectionDataError(f"the manifest's witnesses are unusable: {e}") from e
        return self._policy

    def _see(self, cp: Checkpoint) -> None:
        """Remember a verified checkpoint; raise ``fork`` / ``consistency`` unless it agrees with the largest
        one seen before (same size: same root; else the server's consistency proof between the two)."""
        known = self._seen.get(cp.size)
        if known is not None:
            if known != cp.root:
                raise ReceiptError("fork", f"two different signed trees of size {cp.size}: a split view")
            return
        big = self._largest
        if big is not None:
            (old_size, old_root), (new_size, new_root) = sorted(
                [(big.size, big.root), (cp.size, cp.root)], key=lambda t: t[0]
            )
            try:
                path = f"/ledger/proof/consistency?old_size={old_size}&new_size={new_size}"
                proof = self._call("GET", path)
                verify_consistency(
                    old_size, new_size, old_root, new_root, [bytes.fromhex(h) for h in proof["proof"]]
                )
            except Exception as e:  # ServerError too: a server that cannot prove it is not trusted here
                raise ReceiptError(
                    "consistency", f"size {new_size} is not an extension of size {old_size}: {e}"
                ) from e
        self._seen[cp.size] = cp.root
        if big is None or cp.size > big.size:
            self._largest = cp

    def _cosigned(self, note: str, cosignatures: Any, policy: WitnessPolicy) -> None:
        """Raise unless ``cosignatures`` (as the ledger API serves them) verify for the checkpoint ``note``
        and reach the manifest's quorum."""
        body = SignedCheckpoint.verify(note, self.log_key()).body
        if cosignatures is None:
            raise ReceiptError("checkpoint-unwitnessed", "the checkpoint carries no witness cosignature")
        try:
            bundle = CosignatureBundle.from_json(cosignatures)
            seen = (body, repr(bundle.to_json()))
            if seen not in self._cosigned_ok:
                bundle.verify(body, policy)
                self._cosigned_ok.add(seen)
        except LedgerError as e:
            raise ReceiptError("checkpoint-cosignature", e.operator_message) from e
        if not bundle.witnessed(policy):
            raise ReceiptError(
                "checkpoint-unwitnessed",
                f"the checkpoint has {len(bundle.signers)} of the {policy.quorum} cosignatures needed",
            )

    def _signed(self, note: Any, check: str) -> Checkpoint:
        try:
            return SignedCheckpoint.verify(note, self.log_key()).checkpoint
        except Exception as e:  # ledger.SignatureError / InvalidEncoding / a note that is not text
            raise ReceiptError(check, str(e)) from e

    def verify_receipt(
        self,
        receipt: Receipt,
        *,
        check_latest: bool = True,
        require_witnessed: bool | None = None,
        wait: float = 30.0,
    ) -> Entry:
        """Check a receipt against the public record; raise :class:`ReceiptError` naming the failed check.

        A pending receipt is completed first (:meth:`complete_receipt`, waiting at most ``wait`` seconds
        for the next scheduled checkpoint).
        1. ``checkpoint-signature``: the checkpoint is signed by the log key;
        2. ``inclusion``: the inclusion proof puts ``entry_hash`` at ``leaf_index`` under its root;
        3. ``entry``: the server's entry at that index hashes to ``entry_hash`` and is the ``ballot.cast`` /
           ``ballot.spoiled`` of this ballot hash and tracking code;
        4. ``fork`` / ``consistency``: the checkpoint agrees with every checkpoint this device has seen
           (same size, same root; otherwise a consistency proof to the largest);
        5. ``consistency`` (``check_latest``): the server's latest checkpoint is signed and extends the
           receipt's tree (the ballot cannot have been dropped since);
        6. ``checkpoint-unwitnessed`` / ``checkpoint-cosignature`` (``require_witnessed``, by default when
           the manifest's quorum is at least 1): the latest checkpoint, or else the receipt's own, is
           cosigned by the manifest's quorum of witnesses. Witnesses cosign some time after a checkpoint
           is issued, so a fresh receipt can be ``checkpoint-unwitnessed`` at first: check it again later.
        Returns the verified entry.
        """
        receipt = self.complete_receipt(receipt, timeout=wait)
        if receipt.checkpoint is None or receipt.inclusion_proof is None:
            raise ReceiptError("inclusion", "the receipt has a checkpoint but no inclusion proof")
        cp = self._signed(receipt.checkpoint, "checkpoint-signature")
        try:
            verify_inclusion(
                bytes.fromhex(receipt.entry_hash),
                receipt.leaf_index,
                cp.size,
                [bytes.fromhex(h) for h in receipt.inclusion_proof],
                cp.root,
            )
        except Exception as e:  # ledger.ProofError / InvalidEncoding / ValueError
            raise ReceiptError("inclusion", str(e)) from e
        entry = self.entry(receipt.leaf_index)
        want_type = "ballot.cast" if receipt.kind == "cast" else "ballot.spoiled"
        p = entry.payload
        if entry.hash.hex() != receipt.entry_hash or entry.index != receipt.leaf_index:
            raise ReceiptError("entry", "the server's entry does not hash to the receipt's entry hash")
        if entry.type != want_type or p.get("ballot_hash") != receipt.ballot_hash:
            raise ReceiptError("entry", f"entry {entry.index} is not the {want_type} of this ballot")
        if p.get("tracking_code") != receipt.tracking_code:
            raise ReceiptError("entry", "the entry's tracking code differs from the receipt's")
        try:
            if EncryptedBallot.from_dict(p["ballot"]).ballot_hash().hex() != receipt.ballot_hash:
                raise ReceiptError("entry", "the published ballot does not hash to the receipt's ballot hash")
        except (CryptoError, KeyError) as e:
            raise ReceiptError("entry", f"the published ballot does not decode: {e}") from e
        self._see(cp)
        policy = self.witness_policy()
        witnessed = policy.quorum >= 1 if require_witnessed is None else require_witnessed
        latest: Any = None
        if check_latest:
            latest = self._call("GET", "/ledger/checkpoint")
            if not isinstance(latest, dict):
                raise ReceiptError("consistency", "the server's latest checkpoint is not an object")
            self._see(self._signed(latest.get("note"), "consistency"))
        if witnessed:
            if policy.quorum < 1:
                raise ReceiptError("checkpoint-unwitnessed", "the manifest names no witnesses (quorum 0)")
            try:  # the latest checkpoint, when cosigned, covers the receipt's (consistency checked above)
                if latest is None:
                    raise ReceiptError("checkpoint-unwitnessed", "no latest checkpoint fetched")
                self._cosigned(latest["note"], latest.get("cosignatures"), policy)
            except ReceiptError:  # or else the receipt's own checkpoint, as the server stores it
                own = self._call("GET", f"/ledger/checkpoint/{cp.size}")
                if not isinstance(own, dict):
                    raise ReceiptError("checkpoint-unwitnessed", "the checkpoint is not an object") from None
                self._see(self._signed(own.get("note"), "checkpoint-signature"))
                self._cosigned(own["note"], own.get("cosignatures"), policy)
        return entry

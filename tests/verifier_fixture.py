"""A small, complete election record built from the crypto and ledger APIs (the verifier tests' fixture).

:func:`build_election` runs a real election (key ceremony with 3 trustees, t = 2; internet re-votes, a
kiosk override cast at an enrolled kiosk during its one session, a spoiled ballot; tally; 2-of-3
decryption) and returns its ledger *events*; the
:class:`Election` object keeps every key, so :meth:`Election.write` can re-seal **any** list of events
into a valid record (hash chain, Merkle checkpoints signed by the log key, consistency proofs, BLS
cosignatures by both witnesses, a signed result PDF citing the right checkpoint). Tests mutate one
payload and re-seal, so that only the targeted semantic check fails.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rfc8785

from crypto import (
    BallotSecrets,
    ContestSpec,
    ElectionContext,
    EncryptedBallot,
    JointKey,
    TrusteeKey,
    TrusteeKeyGen,
    encrypt_ballot,
    qualify,
    reveal,
    tally_ciphertexts,
)
from crypto._dlog import discrete_log
from crypto._hash import tagged_sha256
from ledger.events import BASE_HASH, BOUND_KEYS, ELECTION_ID
from ledger.merkle import consistency_proof, inclusion_proof, leaf_hash, root
from ledger.record import (
    RESULT_FILE,
    ZERO_HASH,
    Checkpoint,
    CheckpointRecord,
    Entry,
    LogSigner,
    RecordHeader,
    SignedCheckpoint,
    WitnessPolicy,
    WitnessSigner,
    aggregate_cosignatures,
    seal_record,
)

__all__ = ["KIOSK", "Election", "booth_payload", "build_election", "cast_payload", "counted_root"]

NOW = dt.datetime(2027, 4, 25, 12, 0, tzinfo=dt.UTC)
#: the booth the fixture publishes (``booth.published``): two pages and a script, as a server would list them
BOOTH_FILES: dict[str, bytes] = {
    "/": b"<!doctype html><title>booth</title>",
    "/static/booth-ABCDEFGH.js": b"export const booth = 1;\n",
    "/vote": b"<!doctype html><title>vote</title>",
}


def booth_payload(files: dict[str, bytes] = BOOTH_FILES) -> dict[str, Any]:
    """The ``booth.published`` payload of ``files`` (address → bytes), by ``docs/events.md``'s formula."""
    listed = sorted(files.items())
    assets = [{"path": p, "sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)} for p, b in listed]
    return {"assets": assets, "digest": tagged_sha256("booth-assets", rfc8785.dumps(assets)).hex()}


RECORD_URL = "https://record.example.jp/tsukuba-test"


def _manifest(
    witnesses: Sequence[WitnessSigner], contests: list[dict[str, Any]], quorum: int = 2
) -> dict[str, Any]:
    return {
        "format": "tvote-manifest/1",
        "election_id": "tsukuba-test",
        "name": {"ja": "つくば市テスト選挙", "en": "Tsukuba test election"},
        "voting_period": {"opens": "2027-04-18T00:00:00Z", "closes": "2027-04-25T11:00:00Z"},
        "contests": contests,
        "trustees": {"n": 3, "threshold": 2},
        "witnesses": {
            "quorum": quorum,
            "keys": [
                {"name": w.name, "bls_public_key": w.public.public_key.hex(), "pop": w.public.pop.hex()}
                for w in witnesses
            ],
        },
        "revote_rule": "last-internet-kiosk-overrides",
        "auth_methods": ["jpki", "oidc+face"],
    }


CONTESTS = [
    {
        "id": "mayor",
        "kind": "one_of_n",
        "min": 0,
        "max": 1,
        "name": {"ja": "市長", "en": "Mayor"},
        "selections": [
            {"id": f"cand-{k}", "name": {"ja": f"候補{k}", "en": f"Candidate {k}"}} for k in (1, 2, 3)
        ],
    },
    {
        "id": "referendum",
        "kind": "yes_no",
        "min": 0,
        "max": 1,
        "name": {"ja": "住民投票", "en": "Referendum"},
        "selections": [
            {"id": "yes", "name": {"ja": "賛成", "en": "Yes"}},
            {"id": "no", "name": {"ja": "反対", "en": "No"}},
        ],
    },
]


def _issued_at(size: int) -> int:
    """The fixture's (signed) checkpoint time: a function of the size, so re-signing a size gives the same
    note, and non-decreasing along the record as docs/record.md requires."""
    return 1_800_000_000 + size


@dataclass
class Election:
    manifest: dict[str, Any]
    base_hash: bytes
    log: LogSigner
    witnesses: list[WitnessSigner]
    trustee_keys: list[TrusteeKey]
    joint_key: JointKey
    ctx: ElectionContext
    events: list[tuple[str, dict[str, Any]]]
    commission: Any = None
    signer: Any = None
    secrets: dict[str, BallotSecrets] = field(default_factory=dict)
    witness_keys: list[Any] = field(default_factory=list)  # cached: deriving a BLS public key is slow
    roll: list[str] = field(default_factory=list)  # the committed roll's aliases (hex), sorted ascending
    #: the trustees' enrolment keys (Ed25519 seeds), when the manifest pins them (``pinned=True``)
    enrolment_seeds: dict[int, bytes] = field(default_factory=dict)

    # ------------------------------------------------------------------ polling-place kiosks
    @staticmethod
    def kiosk_seed(kiosk_id: str) -> bytes:
        """The test kiosk's Ed25519 seed (a function of its id)."""
        return tagged_sha256("test-kiosk-key", kiosk_id)

    def kiosk_public_key(self, kiosk_id: str) -> str:
        from nacl.signing import SigningKey

        return bytes(SigningKey(self.kiosk_seed(kiosk_id)).verify_key).hex()

    def kiosk_sign(self, kiosk_id: str, purpose: str, *items: Any, seed: bytes | None = None) -> str:
        """The kiosk's Ed25519 signature over ``tagged_sha256(purpose, base_hash, kiosk_id, *items)``
        (docs/events.md, "Polling-place kiosks"), stated here independently of the verifier."""
        from nacl.signing import SigningKey

        digest = tagged_sha256(purpose, self.base_hash, kiosk_id, *items)
        return SigningKey(seed or self.kiosk_seed(kiosk_id)).sign(digest).signature.hex()

    def kiosk_enrolled(
        self, kiosk_id: str, polling_place: str = "つくば市役所 1階 期日前投票所"
    ) -> tuple[str, dict[str, Any]]:
        payload = {
            "kiosk_id": kiosk_id,
            "public_key": self.kiosk_public_key(kiosk_id),
            "polling_place": polling_place,
        }
        return ("kiosk.enrolled", self.bind(payload))

    def kiosk_revoked(self, kiosk_id: str, reason: str = "kiosk stolen") -> tuple[str, dict[str, Any]]:
        return ("kiosk.revoked", self.bind({"kiosk_id": kiosk_id, "reason": reason}))

    def kiosk_opened(
        self, kiosk_id: str, session: int, opened_at: str = "2027-04-18T00:30:00Z"
    ) -> tuple[str, dict[str, Any]]:
        sig = self.kiosk_sign(kiosk_id, "kiosk-opened", session, opened_at)
        payload = {"kiosk_id": kiosk_id, "session": session, "opened_at": opened_at, "kiosk_signature": sig}
        return ("kiosk.opened", self.bind(payload))

    def kiosk_closed(
        self,
        kiosk_id: str,
        session: int,
        ballots_cast: int,
        kiosk_count: int | None = None,
        closed_at: str = "2027-04-25T10:30:00Z",
    ) -> tuple[str, dict[str, Any]]:
        count = ballots_cast if kiosk_count is None else kiosk_count
        sig = self.kiosk_sign(kiosk_id, "kiosk-closed", session, closed_at, count)
        payload = {
            "kiosk_id": kiosk_id,
            "session": session,
            "closed_at": closed_at,
            "ballots_cast": ballots_cast,
            "kiosk_count": count,
            "kiosk_signature": sig,
        }
        return ("kiosk.closed", self.bind(payload))

    def kiosk_ref(self, kiosk_id: str, session: int, ballot_hash: str) -> dict[str, Any]:
        """``ballot.cast.kiosk`` of a kiosk ballot (docs/events.md row 10)."""
        sig = self.kiosk_sign(kiosk_id, "kiosk-ballot", session, bytes.fromhex(ballot_hash))
        return {"kiosk_id": kiosk_id, "session": session, "signature": sig}

    def roll_proof(self, alias: str) -> dict[str, Any]:
        """``ballot.cast``'s ``roll_proof`` for ``alias`` (docs/events.md row 10), computed from the whole
        roll with the list-based ledger.merkle API, independently of the service's stored tree."""
        leaves = [leaf_hash(bytes.fromhex(a)) for a in self.roll]
        index = self.roll.index(alias)
        return {"index": index, "path": [h.hex() for h in inclusion_proof(index, leaves)]}

    def bind(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {ELECTION_ID: self.manifest["election_id"], BASE_HASH: self.base_hash.hex(), **payload}

    # ------------------------------------------------------------------ re-deriving the tally
    def retally(self, events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
        """Recompute tally.encrypted / tally.partial / tally.result honestly from the (mutated) ballots."""
        head = [e for e in events if not e[0].startswith("tally.") and e[0] != "result.declaration"]
        return head + self.tally_events(head)

    @staticmethod
    def counted_hashes(events: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
        """The counted ballots' hashes in ledger order, by the counting rule (kiosk overrides, else the
        voter's last internet ballot), stated independently of the verifier's SQL."""
        last: dict[str, int] = {}
        kiosk: dict[str, int] = {}
        for i, (t, p) in enumerate(events):
            if t != "ballot.cast":
                continue
            if p["channel"] == "kiosk":
                kiosk.setdefault(p["voter_alias"], i)
            else:
                last[p["voter_alias"]] = i
        counted = sorted(set(kiosk.values()) | {i for a, i in last.items() if a not in kiosk})
        return [events[i][1]["ballot_hash"] for i in counted]

    def tally_events(
        self, events: list[tuple[str, dict[str, Any]]], counted: Sequence[str] | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """tally.encrypted, the partials and tally.result for ``events``: honest for the ballots whose
        hashes are ``counted`` (default: the counting rule's set), so a test can publish a consistent
        tally of a wrong set."""
        cast = [(i, p) for i, (t, p) in enumerate(events) if t == "ballot.cast"]
        hashes = self.counted_hashes(events) if counted is None else list(counted)
        by_hash = {p["ballot_hash"]: p for _, p in cast}
        kiosk = {p["voter_alias"] for _, p in cast if p["channel"] == "kiosk"}
        ballots = [EncryptedBallot.from_dict(by_hash[h]["ballot"]) for h in hashes]
        totals = tally_ciphertexts([], ctx=self.ctx)  # identities; summed by hand so any ballot can count
        for bal in ballots:
            for c in bal.contests:
                for sel in c.selections:
                    totals[(c.contest_id, sel.selection_id)] = (
                        totals[(c.contest_id, sel.selection_id)] + sel.ciphertext
                    )
        cts = {
            c.contest_id: {s: totals[(c.contest_id, s)].to_dict() for s in c.selection_ids}
            for c in self.ctx.contests
        }
        out: list[tuple[str, dict[str, Any]]] = [
            ("tally.encrypted", self.bind({"counted_root": counted_root(hashes), "ciphertexts": cts}))
        ]
        used = [k for k in self.trustee_keys if k.trustee in (1, 3)]
        rng = random.Random(7)
        for k in used:
            parts = {
                c.contest_id: {
                    s: k.partial_decrypt(totals[(c.contest_id, s)], rng=rng).to_dict()
                    for s in c.selection_ids
                }
                for c in self.ctx.contests
            }
            out.append(("tally.partial", self.bind({"trustee": k.trustee, "partials": parts})))
        from crypto._group import IDENTITY
        from crypto.hazmat import lagrange_coefficient

        idx = [k.trustee for k in used]
        results: dict[str, dict[str, int]] = {}
        for c in self.ctx.contests:
            results[c.contest_id] = {}
            for s in c.selection_ids:
                ct = totals[(c.contest_id, s)]
                acc = IDENTITY
                for k in used:
                    acc = acc + lagrange_coefficient(k.trustee, idx) * (k.secret_share * ct.a)
                results[c.contest_id][s] = discrete_log(ct.b - acc, max(len(hashes), 1))
        aliases = {p["voter_alias"] for _, p in cast}
        n_counted = len(hashes)
        overridden = sum(1 for i, p in cast if p["channel"] == "internet" and p["voter_alias"] in kiosk)
        counts = {
            "cast": len(cast),
            "counted": n_counted,
            "superseded": len(cast) - n_counted - overridden,
            "overridden": overridden,
            "spoiled": sum(1 for t, _ in events if t == "ballot.spoiled"),
        }
        assert counted is not None or len(aliases) == n_counted
        out.append(("tally.result", self.bind({"results": results, "trustees_used": idx, **counts})))
        return out

    # ------------------------------------------------------------------ sealing a record
    def write(
        self,
        out: Path,
        events: list[tuple[str, dict[str, Any]]] | None = None,
        *,
        declare: bool = True,
        pdf_result: dict[str, Any] | None = None,
        pdf_tamper: Callable[[dict[str, Any]], None] | None = None,
        cosign_final: Sequence[WitnessSigner] | None = None,
    ) -> Path:
        """Seal ``events`` (default: this election's) into a valid record directory at ``out``.

        With ``declare`` (and a tally.result among the events) a signed result.pdf citing the checkpoint
        just after tally.result is written and a result.declaration entry appended.
        """
        evs = list(events if events is not None else self.events)
        entries: list[Entry] = []
        pdf: bytes | None = None

        def append(t: str, p: dict[str, Any]) -> None:
            prev = entries[-1].hash if entries else ZERO_HASH
            entries.append(Entry.create(len(entries), prev, t, p))

        for t, p in evs:
            append(t, p)
        sizes = [max(1, len(entries) // 2), len(entries)]
        result = next((p for t, p in evs if t == "tally.result"), None)
        if declare and result is not None:
            decl_cp = self._checkpoint(entries, len(entries))
            cp_hash = hashlib.sha256(decl_cp.encode()).hexdigest()
            shown = {k: v for k, v in (pdf_result or result).items() if k not in BOUND_KEYS}
            roll_size = next((p["size"] for t, p in evs if t == "roll.commitment"), len(self.roll))
            # the commission's builder refuses a roll smaller than the ballots counted: such a declaration
            # prints the ballots counted as the roll (and V22 finds that the record's roll says otherwise)
            roll_size = max(roll_size, int(shown.get("counted", 0)))
            pdf = self.pdf(shown, decl_cp, roll_size, tamper=pdf_tamper)
            append(
                "result.declaration",
                self.bind(
                    {
                        "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
                        "checkpoint_size": len(entries),
                        "checkpoint_hash": cp_hash,
                    }
                ),
            )
            sizes.append(len(entries))
        sizes = sorted(set(sizes))
        hashes = [e.hash for e in entries]
        cps: list[CheckpointRecord] = []
        witnesses = self.witnesses if cosign_final is None else list(cosign_final)
        for k, n in enumerate(sizes):
            note = self._checkpoint(entries, n)
            body = Checkpoint(self.log.name, n, root(hashes[:n]), _issued_at(n)).body()
            bundle = None
            if k == len(sizes) - 1 and witnesses:
                bundle = aggregate_cosignatures({w.name: w.cosign(body) for w in witnesses})
            prev = sizes[k - 1] if k else None
            proof = tuple(consistency_proof(prev, hashes[:n])) if prev is not None else ()
            cps.append(CheckpointRecord(n, root(hashes[:n]), note, _issued_at(n), prev, proof, bundle))
        header = RecordHeader(
            self.log.public,
            WitnessPolicy(tuple(self.witness_keys), self.manifest["witnesses"]["quorum"]),
            len(entries),
            len(cps),
        )
        seal_record(out, header, cps, (e.canonical for e in entries), {RESULT_FILE: pdf} if pdf else None)
        if self.commission is not None:
            from cryptography.hazmat.primitives import serialization

            (out.parent / f"{out.name}-root.pem").write_bytes(
                self.commission.root_certificate.public_bytes(serialization.Encoding.PEM)
            )
        return out

    def _checkpoint(self, entries: list[Entry], n: int) -> str:
        return SignedCheckpoint.sign(
            Checkpoint(self.log.name, n, root([e.hash for e in entries[:n]]), _issued_at(n)), self.log
        ).note

    def pdf(
        self,
        result: dict[str, Any],
        checkpoint_note: str,
        roll_size: int,
        *,
        tamper: Callable[[dict[str, Any]], None] | None = None,
    ) -> bytes:
        """The signed declaration; with ``tamper``, one whose declaration document (printed and attached
        alike) ``tamper`` changed before rendering: a forged figure, signed with the commission's key."""
        from voting._result_pdf import CommissionSigner, build_result_pdf
        from voting.testing import CommissionTestCa

        if self.commission is None:
            self.commission = CommissionTestCa.generate(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        if self.signer is None:
            self.signer = CommissionSigner(
                self.commission.signer_certificate,
                self.commission.signer_key,
                (self.commission.root_certificate,),
            )
        if tamper is not None:
            from voting._result_pdf import render_result_pdf, result_document, sign_declaration

            doc = result_document(
                self.manifest,
                result,
                checkpoint_hash=hashlib.sha256(checkpoint_note.encode()).hexdigest(),
                record_url=RECORD_URL,
                roll_size=roll_size,
                declared_at=dt.datetime.now(dt.UTC),
                commission="つくば市選挙管理委員会",
                signatory="つくば市選挙管理委員会委員長",
            )
            tamper(doc)
            return sign_declaration(
                render_result_pdf(doc, self.manifest),
                doc,
                self.manifest,
                checkpoint_note.encode(),
                self.signer,
            )
        return build_result_pdf(
            self.manifest,
            result,
            checkpoint_note=checkpoint_note,
            record_url=RECORD_URL,
            roll_size=roll_size,
            signer=self.signer,
        )

    @property
    def root_certificate(self) -> Any:
        """The commission's root (made on first use, as by :meth:`pdf`: a record sealed without a declaration
        may be the first to ask)."""
        from voting.testing import CommissionTestCa

        if self.commission is None:
            self.commission = CommissionTestCa.generate(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        return self.commission.root_certificate


def counted_root(ballot_hashes: Sequence[str]) -> str:
    """``tally.encrypted``'s ``counted_root`` (docs/events.md row 13): the RFC 9162 Merkle root over the
    leaves ``leaf_hash(ballot_hash bytes)`` of the given ballot hashes, in the given order."""
    return root([leaf_hash(bytes.fromhex(h)) for h in ballot_hashes]).hex()


def _alias(k: int) -> str:
    return tagged_sha256("test-alias", k).hex()


def cast_payload(
    el: Election,
    ballot: EncryptedBallot,
    alias: str,
    channel: str,
    seq: int,
    ev: int,
    method: str = "jpki",
    kiosk: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """A ``ballot.cast`` payload; ``kiosk`` = (kiosk id, session) adds the kiosk's signed ``kiosk`` object."""
    auth: dict[str, Any] = {"method": method, "evidence_hash": tagged_sha256("test-evidence", ev).hex()}
    if method == "oidc+face":
        auth["face"] = {"decision": True, "engine": "test-face/1"}
    payload = {
        "ballot": ballot.to_dict(),
        "ballot_hash": ballot.ballot_hash().hex(),
        "tracking_code": ballot.tracking_code(),
        "voter_alias": alias,
        "roll_proof": el.roll_proof(alias),
        "channel": channel,
        "auth": auth,
        "seq": seq,
    }
    if kiosk is not None:
        payload["kiosk"] = el.kiosk_ref(kiosk[0], kiosk[1], payload["ballot_hash"])
    return el.bind(payload)


#: the fixture's polling-place kiosk: enrolled before voting opens, open for one session that casts one ballot
KIOSK = "tsukuba-city-hall-1"


JPKI_ROOT_PIN = hashlib.sha256(b"a JPKI signing root (the fixture's ballots carry none)").hexdigest()


def build_election(
    seed: int = 1,
    *,
    contests: list[dict[str, Any]] | None = None,
    witnessed: bool = True,
    pinned: bool = False,
) -> Election:
    """``witnessed=False``: a manifest with no witnesses (quorum 0), as development servers run.
    ``pinned``: the manifest pins the log key, a JPKI root, the commission root and the three trustees'
    enrolment keys, and every trustee.registered carries its enrolment signature (docs/events.md, "Pins")."""
    rng = random.Random(seed)
    log = LogSigner.generate("tvote.test/log", seed=rng.randbytes(32))
    witnesses = [WitnessSigner.generate(f"witness-{k}", random=rng.randbytes) for k in (1, 2)]
    if not witnessed:
        witnesses = []
    manifest = _manifest(witnesses, copy.deepcopy(contests or CONTESTS), 2 if witnessed else 0)
    commission = None
    enrolment_seeds: dict[int, bytes] = {}
    if pinned:
        from cryptography.hazmat.primitives import hashes
        from nacl.signing import SigningKey

        from voting.testing import CommissionTestCa

        commission = CommissionTestCa.generate(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        prng = random.Random(seed + 1000)
        enrolment_seeds = {i: prng.randbytes(32) for i in (1, 2, 3)}
        seeds = list(enrolment_seeds.values())
        manifest["pins"] = {
            "log_key": log.public.vkey,
            "jpki_roots_sha256": [JPKI_ROOT_PIN],
            "commission_root_sha256": commission.root_certificate.fingerprint(hashes.SHA256()).hex(),
            "trustee_enrolment_keys": [bytes(SigningKey(s).verify_key).hex() for s in seeds],
        }
    base_hash = tagged_sha256("election-base-hash", rfc8785.dumps(manifest))
    el = Election(manifest, base_hash, log, witnesses, [], None, None, [])  # type: ignore[arg-type]
    el.commission = commission
    el.enrolment_seeds = enrolment_seeds
    el.witness_keys = [w.public for w in witnesses]
    events: list[tuple[str, dict[str, Any]]] = [
        ("election.manifest", {"manifest": manifest, "base_hash": base_hash.hex()})
    ]
    gens = [
        TrusteeKeyGen.generate(i, threshold=2, trustees=3, base_hash=base_hash, rng=rng) for i in (1, 2, 3)
    ]
    names = {1: "University of Tsukuba", 2: "Observer party", 3: "Ibaraki Prefecture"}
    for g in gens:
        registration = {
            "trustee": g.trustee,
            "name": names[g.trustee],
            "x25519_public_key": g.commitments.x25519_public_key.hex(),
            "commitments": g.commitments.to_dict(),
        }
        if pinned:
            from crypto import TrusteeEnrolment

            registration["enrolment"] = TrusteeEnrolment.sign(
                enrolment_seeds[g.trustee],
                base_hash=base_hash,
                trustee=g.trustee,
                name=names[g.trustee],
                commitments=g.commitments,
            ).to_dict()
        events.append(("trustee.registered", el.bind(registration)))
    for g in gens:
        shares = [g.encrypt_share(o.commitments, rng=rng) for o in gens if o.trustee != g.trustee]
        events.append(
            (
                "trustee.shares",
                el.bind(
                    {
                        "sender": g.trustee,
                        "shares": [
                            {"recipient": s.recipient, "ciphertext": s.ciphertext.hex()} for s in shares
                        ],
                    }
                ),
            )
        )
    comms = [g.commitments for g in gens]
    q = qualify(comms, base_hash=base_hash, threshold=2, trustees=3)
    jk = JointKey.from_commitments(comms, q, base_hash=base_hash)
    keys = [
        g.finalize({o.trustee: o.share_for(g.trustee) for o in gens if o.trustee != g.trustee}, comms)
        for g in gens
    ]
    jd = jk.to_dict()
    events.append(
        (
            "election.joint-key",
            el.bind({k: jd[k] for k in ("qualified", "joint_key", "public_shares", "threshold")}),
        )
    )
    aliases = [_alias(k) for k in range(8)]  # eight on the roll; five of them vote
    el.roll = sorted(aliases)
    events.append(
        (
            "roll.commitment",
            el.bind(
                {
                    "size": len(el.roll),
                    "root": root([leaf_hash(bytes.fromhex(a)) for a in el.roll]).hex(),
                    "alias_scheme": "hmac-sha256/1",
                }
            ),
        )
    )
    events.append(("booth.published", el.bind(booth_payload())))
    events.append(el.kiosk_enrolled(KIOSK))
    events.append(("voting.opened", el.bind({"opened_at": "2027-04-18T00:00:00Z"})))
    events.append(el.kiosk_opened(KIOSK, 1))
    specs = tuple(
        ContestSpec(c["id"], tuple(s["id"] for s in c["selections"]), c["min"], c["max"])
        for c in manifest["contests"]
    )
    ctx = ElectionContext(base_hash, jk.public_key, specs)
    el.trustee_keys, el.joint_key, el.ctx = keys, jk, ctx

    def choice(k: int) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for c in specs:
            picks = list(c.selection_ids)
            n = (k % (c.max_selections + 1)) if c.min_selections == 0 else max(1, k % (c.max_selections + 1))
            out[c.contest_id] = [picks[(k + j) % len(picks)] for j in range(n)]
        return out

    ev = 0
    seq: dict[str, int] = {}

    def cast(alias: str, k: int, channel: str = "internet", method: str = "jpki") -> None:
        nonlocal ev
        b, sec = encrypt_ballot(ctx, choice(k), rng=rng)
        seq[alias] = seq.get(alias, 0) + 1
        ev += 1
        el.secrets[b.ballot_hash().hex()] = sec
        kiosk = (KIOSK, 1) if channel == "kiosk" else None
        events.append(("ballot.cast", cast_payload(el, b, alias, channel, seq[alias], ev, method, kiosk)))

    cast(aliases[0], 1)
    cast(aliases[1], 2, method="oidc+face")
    cast(aliases[0], 3)  # re-vote: supersedes the first
    b, sec = encrypt_ballot(ctx, choice(4), rng=rng)  # a challenged ballot, published with its secrets
    events.append(
        (
            "ballot.spoiled",
            el.bind(
                {
                    "ballot": b.to_dict(),
                    "ballot_hash": b.ballot_hash().hex(),
                    "tracking_code": b.tracking_code(),
                    "revealed": reveal(b, sec).to_dict(),
                }
            ),
        )
    )
    cast(aliases[2], 5)
    cast(aliases[3], 6)
    cast(aliases[2], 7, channel="kiosk")  # overrides the internet ballot of voter 2
    cast(aliases[4], 8, method="oidc+face")
    events.append(el.kiosk_closed(KIOSK, 1, ballots_cast=1))
    events.append(("voting.closed", el.bind({"closed_at": "2027-04-25T11:00:00Z"})))
    events.extend(el.tally_events(events))
    el.events = events
    return el

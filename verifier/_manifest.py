"""V7 election.manifest: the verifier's own reading of the manifest (``docs/events.md``, "The manifest").

The verifier does not import the server's manifest model: it re-validates the published object here,
structurally and independently, and recomputes the base hash::

    base_hash = tagged_sha256("election-base-hash", rfc8785(manifest))
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Final

import rfc8785

from crypto import tagged_sha256
from ledger.record import TextRuleError, check_display_text

from ._checks import fail

__all__ = ["MANIFEST_FORMAT", "ContestInfo", "ElectionInfo", "parse_time", "read_manifest"]

MANIFEST_FORMAT: Final[str] = "tvote-manifest/1"
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_KINDS: Final[frozenset[str]] = frozenset({"one_of_n", "up_to_k", "yes_no"})
_AUTH: Final[frozenset[str]] = frozenset({"jpki", "oidc+face"})
_HEX64_KEY: Final[re.Pattern[str]] = re.compile(r"[0-9a-f]{64}")
_TOP_KEYS: Final[frozenset[str]] = frozenset(
    {
        "format",
        "election_id",
        "name",
        "voting_period",
        "contests",
        "trustees",
        "witnesses",
        "revote_rule",
        "auth_methods",
        "oversight",
        "pins",
    }
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PIN_KEYS: Final[frozenset[str]] = frozenset(
    {"log_key", "jpki_roots_sha256", "commission_root_sha256", "trustee_enrolment_keys"}
)


@dataclass(frozen=True, slots=True)
class ContestInfo:
    id: str
    kind: str
    min: int
    max: int
    selections: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ElectionInfo:
    """What the rest of the verifier needs from the manifest (immutable, picklable for workers)."""

    election_id: str
    base_hash: bytes
    contests: tuple[ContestInfo, ...]
    trustees: int
    threshold: int
    witness_quorum: int
    witness_keys: tuple[tuple[str, str, str], ...]  # (name, bls_public_key hex, pop hex)
    revote_rule: str
    auth_methods: tuple[str, ...]
    manifest: dict[str, Any]
    #: ``voting_period``: when voting opens and closes (UTC)
    opens: dt.datetime
    closes: dt.datetime
    #: display names, ``"ja (en)"``, by contest id and by ``"contest/selection"`` (shown, never checked)
    labels: dict[str, str] = field(default_factory=dict)
    #: the manifest's ``pins`` (``docs/events.md``, "Pins"), structurally checked; ``None``: nothing pinned
    pins: dict[str, Any] | None = None

    def contest(self, cid: str) -> ContestInfo:
        for c in self.contests:
            if c.id == cid:
                return c
        raise KeyError(cid)

    def selection_keys(self) -> list[tuple[str, str]]:
        return [(c.id, s) for c in self.contests for s in c.selections]


_LABEL_MAX: Final[int] = 120


def _label(name: Any) -> str | None:
    """``"ja (en)"`` from a manifest ``name`` object, or ``None`` if it is not two short strings."""
    if not isinstance(name, dict):
        return None
    ja, en = name.get("ja"), name.get("en")
    if not isinstance(ja, str) or not isinstance(en, str) or not ja.strip() or not en.strip():
        return None
    # the record is untrusted: no line breaks, no control or escape characters reach the terminal
    text = "".join(ch for ch in " ".join(f"{ja} ({en})".split()) if ch.isprintable())
    return text if len(text) <= _LABEL_MAX else text[: _LABEL_MAX - 1] + "…"


def _labels(contests_raw: list[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in contests_raw:
        if (label := _label(c.get("name"))) is not None:
            out[c["id"]] = label
        for sel in c["selections"]:
            if (label := _label(sel.get("name"))) is not None:
                out[f"{c['id']}/{sel['id']}"] = label
    return out


def _check_name(name: Any, where: str, entry: int) -> None:
    """The manifest's display-text rule (``ledger.record.check_display_text``, shared with the server) on a
    ``name`` object: exactly ``ja`` and ``en``, each an acceptable label."""
    if not isinstance(name, dict) or set(name) != {"ja", "en"}:
        fail("election.manifest", f"{where} is an object with exactly ja and en", entry=entry)
    for lang in ("ja", "en"):
        try:
            check_display_text(name[lang])
        except TextRuleError as e:
            fail("election.manifest", f"{where}.{lang} {e}", entry=entry)


_TIME = "%Y-%m-%dT%H:%M:%SZ"


def parse_time(value: Any) -> dt.datetime | None:
    """A record time (``YYYY-MM-DDTHH:MM:SSZ``, UTC) or ``None`` if it is not one."""
    if not isinstance(value, str) or len(value) != 20:
        return None
    try:
        return dt.datetime.strptime(value, _TIME).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def read_manifest(payload: Any, *, entry: int = 0) -> ElectionInfo:
    """Validate the ``election.manifest`` payload and recompute the base hash; raise V7 on any problem."""

    def bad(msg: str) -> Any:
        fail("election.manifest", msg, entry=entry)

    if not isinstance(payload, dict) or "manifest" not in payload or "base_hash" not in payload:
        bad("the manifest entry's payload has 'manifest' and 'base_hash'")
    m = payload["manifest"]
    if not isinstance(m, dict):
        bad("the manifest is an object")
    if m.get("format") != MANIFEST_FORMAT:
        bad(f"unsupported manifest format {m.get('format')!r} (this verifier reads {MANIFEST_FORMAT})")
    unknown = set(m) - _TOP_KEYS
    if unknown:
        bad(f"unknown manifest keys {sorted(unknown)}")
    eid = m.get("election_id")
    if not isinstance(eid, str) or not _ID.fullmatch(eid):
        bad("election_id is a lowercase identifier")
    contests_raw = m.get("contests")
    if not isinstance(contests_raw, list) or not contests_raw:
        bad("contests is a non-empty list")
    _check_name(m.get("name"), "name", entry)
    period = m.get("voting_period")
    if not isinstance(period, dict) or set(period) != {"opens", "closes"}:
        bad("voting_period is {opens, closes}")
    opens, closes = parse_time(period["opens"]), parse_time(period["closes"])
    if opens is None or closes is None or closes <= opens:
        fail(
            "election.manifest",
            "voting_period: opens and closes are YYYY-MM-DDTHH:MM:SSZ times, closes after opens",
            entry=entry,
        )
    contests: list[ContestInfo] = []
    for ci, c in enumerate(contests_raw):
        if not isinstance(c, dict):
            bad("a contest is an object")
        cid, kind, lo, hi, sels = c.get("id"), c.get("kind"), c.get("min"), c.get("max"), c.get("selections")
        if not isinstance(cid, str) or not _ID.fullmatch(cid):
            bad("a contest id is a lowercase identifier")
        if kind not in _KINDS:
            bad(f"contest {cid}: unknown kind {kind!r}")
        if not isinstance(sels, list) or not sels or not all(isinstance(s, dict) for s in sels):
            bad(f"contest {cid}: selections is a non-empty list of objects")
        _check_name(c.get("name"), f"contests[{ci}].name", entry)
        for si, sel in enumerate(sels):
            _check_name(sel.get("name"), f"contests[{ci}].selections[{si}].name", entry)
        sids = tuple(s.get("id") for s in sels)
        if not all(isinstance(s, str) and _ID.fullmatch(s) for s in sids) or len(set(sids)) != len(sids):
            bad(f"contest {cid}: selection ids are distinct lowercase identifiers")
        if not (_int(lo) and _int(hi) and 0 <= lo <= hi <= len(sids) and hi >= 1):
            bad(f"contest {cid}: 0 <= min <= max <= number of selections, max >= 1")
        if kind == "one_of_n" and hi != 1:
            bad(f"contest {cid}: a one_of_n contest has max 1")
        if kind == "yes_no" and (sorted(sids) != ["no", "yes"] or hi != 1):
            bad(f"contest {cid}: a yes_no contest has exactly the selections yes and no, max 1")
        contests.append(ContestInfo(cid, kind, lo, hi, sids))
    if len({c.id for c in contests}) != len(contests):
        bad("contest ids are distinct")
    tr = m.get("trustees")
    if not isinstance(tr, dict) or not _int(tr.get("n")) or not _int(tr.get("threshold")):
        bad("trustees is {n, threshold}")
    if not 1 <= tr["threshold"] <= tr["n"]:
        bad("1 <= threshold <= n")
    wit = m.get("witnesses", {"quorum": 0, "keys": []})
    if not isinstance(wit, dict) or not _int(wit.get("quorum")) or not isinstance(wit.get("keys"), list):
        bad("witnesses is {quorum, keys}")
    wkeys: list[tuple[str, str, str]] = []
    for k in wit["keys"]:
        fields = ("name", "bls_public_key", "pop")
        if not isinstance(k, dict) or not all(isinstance(k.get(f), str) for f in fields):
            bad("a witness key is {name, bls_public_key, pop}")
        wkeys.append((k["name"], k["bls_public_key"], k["pop"]))
    if not 0 <= wit["quorum"] <= len(wkeys) or (wkeys and wit["quorum"] < 1):
        bad("1 <= witness quorum <= number of witness keys")
    if len({k[1] for k in wkeys}) != len(wkeys):
        bad("witness keys are distinct")
    rule = m.get("revote_rule", "last-internet-kiosk-overrides")
    if rule != "last-internet-kiosk-overrides":
        bad(f"unknown revote rule {rule!r}")
    auth = m.get("auth_methods")
    if not isinstance(auth, list) or not auth or not set(auth) <= _AUTH or len(set(auth)) != len(auth):
        bad("auth_methods is a non-empty list of jpki / oidc+face")
    ov = m.get("oversight")
    if ov is not None and (
        not isinstance(ov, dict)
        or set(ov) != {"x25519_public_key"}
        or not isinstance(ov["x25519_public_key"], str)
        or not _HEX64_KEY.fullmatch(ov["x25519_public_key"])
    ):
        bad("oversight is {x25519_public_key: 64 lowercase hex}")
    pins = m.get("pins")
    if pins is not None:
        _check_pins(pins, tr["n"], "jpki" in auth, entry)
    # "base_hash = tagged_sha256("election-base-hash", rfc8785(manifest))"
    bh = tagged_sha256("election-base-hash", rfc8785.dumps(m))
    if payload["base_hash"] != bh.hex():
        bad("base_hash does not recompute from the manifest")
    return ElectionInfo(
        election_id=eid,
        base_hash=bh,
        contests=tuple(contests),
        trustees=tr["n"],
        threshold=tr["threshold"],
        witness_quorum=wit["quorum"],
        witness_keys=tuple(wkeys),
        revote_rule=rule,
        auth_methods=tuple(auth),
        manifest=m,
        opens=opens,
        closes=closes,
        labels=_labels(contests_raw),
        pins=pins,
    )


def _check_pins(pins: Any, trustees: int, jpki: bool, entry: int) -> None:
    """The ``pins`` object's shape (``docs/events.md``, "Pins"); what it pins is compared elsewhere (V4,
    V22, V27, V28)."""
    from ledger.record import LedgerError, LogKey

    def bad(msg: str) -> None:
        fail("election.manifest", f"pins: {msg}", entry=entry)

    if not isinstance(pins, dict) or set(pins) != _PIN_KEYS:
        bad(f"an object with exactly {sorted(_PIN_KEYS)}")
    try:
        if not isinstance(pins["log_key"], str) or LogKey.from_vkey(pins["log_key"]).vkey != pins["log_key"]:
            bad("log_key is not a canonical signed-note verifier key")
    except LedgerError:
        bad("log_key is not a signed-note verifier key")
    for name in ("jpki_roots_sha256", "trustee_enrolment_keys"):
        v = pins[name]
        if not isinstance(v, list) or not all(isinstance(h, str) and _HEX64.fullmatch(h) for h in v):
            bad(f"{name} is a list of 64 lowercase hex digits")
        if len(set(v)) != len(v):
            bad(f"{name} repeats a value")
    if jpki and not pins["jpki_roots_sha256"]:
        bad("jpki_roots_sha256 is empty but auth_methods allows jpki")
    if len(pins["trustee_enrolment_keys"]) != trustees:
        bad(f"trustee_enrolment_keys has one key per trustee ({trustees})")
    c = pins["commission_root_sha256"]
    if not isinstance(c, str) or not _HEX64.fullmatch(c):
        bad("commission_root_sha256 is 64 lowercase hex digits")

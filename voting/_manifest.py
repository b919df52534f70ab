"""The election manifest: a validated, immutable pydantic model; YAML/JSON loading; the base hash.

The manifest format (``tvote-manifest/1``) is fixed in ``docs/events.md``. :func:`parse_manifest` accepts a
mapping, JSON text or YAML text and raises :class:`~voting._errors.ManifestError` whose ``details`` list every
problem with its location (``contests[1].max``) and a plain-language message. :meth:`Manifest.to_dict` is the
*published* form (the object put in the ``election.manifest`` ledger entry): defaults filled in, times in
``YYYY-MM-DDTHH:MM:SSZ``, no nulls. The election base hash is::

    base_hash = tagged_sha256("election-base-hash", rfc8785(manifest.to_dict()))

i.e. SHA-256 of the domain-separated, length-prefixed transcript (``crypto._hash``) whose one item is the
RFC 8785 canonical JSON of the published manifest.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import rfc8785
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from crypto import tagged_sha256
from ledger.record import LedgerError, LogKey, check_display_text

from ._errors import ManifestError

__all__ = [
    "MANIFEST_FORMAT",
    "Contest",
    "LocalizedText",
    "Manifest",
    "Oversight",
    "Pins",
    "Selection",
    "TrusteeParams",
    "VotingPeriod",
    "WitnessKey",
    "Witnesses",
    "base_hash_of",
    "load_manifest",
    "parse_manifest",
]

MANIFEST_FORMAT: Final = "tvote-manifest/1"  # Final without a type: the Literal the field below needs
BASE_HASH_PURPOSE: Final[str] = "election-base-hash"
MAX_TRUSTEES: Final[int] = 64

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
#: a voter-facing label: the display-text rule of ``ledger.record.check_display_text`` (shared with the
#: verifier), after leading and trailing whitespace are stripped
Label = Annotated[str, AfterValidator(check_display_text)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class LocalizedText(_Frozen):
    """A label in Japanese and English (both required)."""

    ja: Label
    en: Label


class Selection(_Frozen):
    id: Identifier
    name: LocalizedText


class Contest(_Frozen):
    """One contest. ``one_of_n``: choose at most (``min`` 0) or exactly (``min`` 1) one; ``up_to_k``:
    approve between ``min`` and ``max``; ``yes_no``: the selections are exactly ``yes`` and ``no``."""

    id: Identifier
    kind: Literal["one_of_n", "up_to_k", "yes_no"]
    name: LocalizedText
    min: int = Field(default=0, ge=0)
    max: int = Field(default=1, ge=1)
    selections: list[Selection] = Field(min_length=1, max_length=256)

    @model_validator(mode="after")
    def _check(self) -> Contest:
        ids = [s.id for s in self.selections]
        if len(set(ids)) != len(ids):
            raise ValueError(f"contest {self.id!r}: selection ids must be unique")
        if self.min > self.max:
            raise ValueError(f"contest {self.id!r}: min ({self.min}) exceeds max ({self.max})")
        if self.kind == "one_of_n":
            if self.max != 1:
                raise ValueError(f"contest {self.id!r}: a one_of_n contest has max 1")
            if len(ids) < 2:
                raise ValueError(f"contest {self.id!r}: a one_of_n contest needs at least 2 selections")
        elif self.kind == "up_to_k":
            if self.max > len(ids):
                raise ValueError(
                    f"contest {self.id!r}: max ({self.max}) exceeds the number of selections ({len(ids)})"
                )
        else:
            if sorted(ids) != ["no", "yes"] or self.max != 1:
                raise ValueError(
                    f"contest {self.id!r}: a yes_no contest has exactly the selections 'yes' and 'no', max 1"
                )
        return self


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as e:
            raise ValueError("not an RFC 3339 date-time") from e
    if not isinstance(value, dt.datetime):
        raise ValueError("expected an RFC 3339 date-time such as 2027-04-18T00:00:00Z")
    if value.tzinfo is None:
        raise ValueError("the time zone is required (e.g. Z or +09:00)")
    if value.microsecond:
        raise ValueError("times are whole seconds")
    return value.astimezone(dt.UTC)


class VotingPeriod(_Frozen):
    opens: dt.datetime
    closes: dt.datetime

    _norm = field_validator("opens", "closes", mode="before")(classmethod(lambda cls, v: _utc(v)))

    @model_validator(mode="after")
    def _order(self) -> VotingPeriod:
        if self.closes <= self.opens:
            raise ValueError("voting_period.closes must be after voting_period.opens")
        return self

    @field_serializer("opens", "closes")
    def _ser(self, v: dt.datetime) -> str:
        return v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TrusteeParams(_Frozen):
    n: int = Field(ge=1, le=MAX_TRUSTEES)
    threshold: int = Field(ge=1)

    @model_validator(mode="after")
    def _t(self) -> TrusteeParams:
        if self.threshold > self.n:
            raise ValueError(f"trustees.threshold ({self.threshold}) exceeds trustees.n ({self.n})")
        return self


HexStr = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]*$")]


class WitnessKey(_Frozen):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$")]
    bls_public_key: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{96}$")]
    pop: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{192}$")]


class Witnesses(_Frozen):
    quorum: int = Field(default=0, ge=0)
    keys: list[WitnessKey] = Field(default_factory=list)

    @model_validator(mode="after")
    def _q(self) -> Witnesses:
        if self.quorum > len(self.keys):
            raise ValueError(f"witnesses.quorum ({self.quorum}) exceeds the number of witness keys")
        if self.keys and self.quorum < 1:
            raise ValueError("witnesses.quorum must be at least 1 when witnesses are listed")
        if len({k.bls_public_key for k in self.keys}) != len(self.keys):
            raise ValueError("witness keys must be distinct")
        return self


class Oversight(_Frozen):
    """The independent observers' X25519 public key: intake seals the private authentication evidence to it
    (``voting._oversight``); ``tvote audit-evidence`` opens it with the secret half."""

    x25519_public_key: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def _check_vkey(text: str) -> str:
    """A signed-note verifier key (``<name>+<8 hex key id>+<base64 of 0x01 || Ed25519 key>``), read by the
    ledger's own parser and required in its canonical spelling."""
    try:
        key = LogKey.from_vkey(text)
    except LedgerError as e:
        raise ValueError(f"not a signed-note verifier key ({e})") from None
    if key.vkey != text:
        raise ValueError("not a canonical signed-note verifier key")
    return text


VerifierKey = Annotated[str, StringConstraints(max_length=300), AfterValidator(_check_vkey)]


class Pins(_Frozen):
    """Everything the election must trust, pinned in the manifest and so in the base hash
    (``docs/events.md``, "Pins"): the log's signed-note verifier key, the SHA-256 fingerprints of the JPKI
    signing roots the server accepts and of the commission's PDF-signing root, and each trustee's Ed25519
    enrolment key (position ``i - 1`` is trustee ``i``'s). Optional in development; production requires it
    and refuses a running configuration that differs (start-up check ``manifest_pins``)."""

    log_key: VerifierKey
    jpki_roots_sha256: list[Hex64] = Field(max_length=32)
    commission_root_sha256: Hex64
    trustee_enrolment_keys: list[Hex64] = Field(min_length=1, max_length=MAX_TRUSTEES)

    @model_validator(mode="after")
    def _distinct(self) -> Pins:
        if len(set(self.jpki_roots_sha256)) != len(self.jpki_roots_sha256):
            raise ValueError("pins.jpki_roots_sha256 must not repeat")
        if len(set(self.trustee_enrolment_keys)) != len(self.trustee_enrolment_keys):
            raise ValueError("pins.trustee_enrolment_keys must be distinct (one key per trustee)")
        return self


class Manifest(_Frozen):
    """A validated election manifest (``tvote-manifest/1``). Immutable."""

    format: Literal["tvote-manifest/1"] = MANIFEST_FORMAT
    election_id: Identifier
    name: LocalizedText
    voting_period: VotingPeriod
    contests: list[Contest] = Field(min_length=1, max_length=64)
    trustees: TrusteeParams
    witnesses: Witnesses = Field(default_factory=Witnesses)
    revote_rule: Literal["last-internet-kiosk-overrides"] = "last-internet-kiosk-overrides"
    auth_methods: list[Literal["jpki", "oidc+face"]] = Field(min_length=1)
    #: optional for development; production refuses an election without it (start-up check "oversight")
    oversight: Oversight | None = None
    #: what must be trusted (``None``: not pinned, development only; omitted from the published form)
    pins: Pins | None = None

    @model_validator(mode="after")
    def _unique(self) -> Manifest:
        ids = [c.id for c in self.contests]
        if len(set(ids)) != len(ids):
            raise ValueError("contest ids must be unique")
        if len(set(self.auth_methods)) != len(self.auth_methods):
            raise ValueError("auth_methods must not repeat")
        if self.pins is not None:
            if len(self.pins.trustee_enrolment_keys) != self.trustees.n:
                raise ValueError(
                    f"pins.trustee_enrolment_keys has {len(self.pins.trustee_enrolment_keys)} keys, "
                    f"trustees.n is {self.trustees.n} (one enrolment key per trustee, in index order)"
                )
            if "jpki" in self.auth_methods and not self.pins.jpki_roots_sha256:
                raise ValueError("pins.jpki_roots_sha256 is empty but auth_methods allows 'jpki'")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The published form (what goes into the ``election.manifest`` entry); no ``oversight`` or
        ``pins`` key when there is none (so manifests without them keep their base hash)."""
        d = self.model_dump(mode="json")
        for optional in ("oversight", "pins"):  # no nulls in the published form
            if d.get(optional) is None:
                d.pop(optional, None)
        return d

    def canonical_json(self) -> bytes:
        return rfc8785.dumps(self.to_dict())

    @cached_property
    def base_hash(self) -> bytes:
        """Computed once per (immutable) manifest: every cast binds to it."""
        return base_hash_of(self.to_dict())

    def contest(self, contest_id: str) -> Contest:
        for c in self.contests:
            if c.id == contest_id:
                return c
        raise KeyError(contest_id)

    def contest_specs(self) -> list[Any]:
        """The contests as :class:`crypto.ContestSpec` values (for encryption and verification)."""
        from crypto import ContestSpec

        return [
            ContestSpec(
                contest_id=c.id,
                selection_ids=tuple(s.id for s in c.selections),
                min_selections=c.min,
                max_selections=c.max,
            )
            for c in self.contests
        ]


def base_hash_of(manifest_dict: Mapping[str, Any]) -> bytes:
    """``tagged_sha256("election-base-hash", rfc8785(manifest))`` (32 bytes)."""
    return tagged_sha256(BASE_HASH_PURPOSE, rfc8785.dumps(dict(manifest_dict)))


def _loc(parts: tuple[int | str, ...]) -> str:
    """``("contests", 1, "selections", 0, "name", "ja")`` -> ``contests[1].selections[0].name.ja``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(manifest)"


class _YamlBoolean:
    """What an unquoted YAML 1.1 boolean word (``yes``, ``No``, ``on``, ``OFF``, ``true`` ...) reads as: the
    manifest has no boolean field, so such a word was meant as text; it fails validation with a hint."""

    __slots__ = ("word",)

    def __init__(self, word: str) -> None:
        self.word = word

    def __repr__(self) -> str:
        return f"unquoted YAML boolean {self.word!r}"


def _yaml_loader() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def boolean(loader: yaml.SafeLoader, node: yaml.Node) -> _YamlBoolean:
        return _YamlBoolean(str(loader.construct_scalar(node)))  # type: ignore[arg-type]

    Loader.add_constructor("tag:yaml.org,2002:bool", boolean)
    return Loader


def _hint(err: Mapping[str, Any]) -> str:
    value = err.get("input")
    if isinstance(value, _YamlBoolean):
        return (
            f"; YAML read the unquoted word {value.word} as a boolean (true/false), not as text: "
            f"quote it: '{value.word}'"
        )
    if isinstance(value, bool):
        return "; a boolean (true/false) where text was expected: in YAML, quote the word: 'yes'"
    return ""


def _problems(e: ValidationError) -> list[dict[str, str]]:
    out = []
    for err in e.errors():
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        out.append({"loc": _loc(tuple(err.get("loc", ()))), "msg": msg + _hint(err)})
    return out


def parse_manifest(data: Mapping[str, Any] | str | bytes) -> Manifest:
    """Validate a manifest given as a mapping, JSON text or YAML text."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ManifestError("manifest.encoding", "the manifest is not UTF-8 text") from e
    if isinstance(data, str):
        import yaml  # YAML is a superset of JSON

        try:
            data = yaml.load(data, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as e:
            raise ManifestError("manifest.syntax", f"the manifest is not valid YAML/JSON: {e}") from e
    if not isinstance(data, Mapping):
        raise ManifestError("manifest.syntax", "the manifest must be a mapping (object) at the top level")
    try:
        m = Manifest.model_validate(dict(data))
    except ValidationError as e:
        problems = _problems(e)
        summary = "; ".join(f"{p['loc']}: {p['msg']}" for p in problems[:5])
        raise ManifestError("manifest.invalid", f"invalid manifest: {summary}", details=problems) from e
    return m


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file (``.yaml``, ``.yml`` or ``.json``)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ManifestError("manifest.unreadable", f"cannot read manifest file {p.name}: {e.strerror}") from e
    if p.suffix.lower() == ".json":
        try:
            return parse_manifest(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ManifestError("manifest.syntax", f"the manifest is not valid JSON: {e}") from e
    return parse_manifest(raw)

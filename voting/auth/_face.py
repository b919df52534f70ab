"""Face-match hook for the digital-ID path (pluggable; fails closed).

The service asks a :class:`FaceMatcher` whether the live capture matches the reference image of the
**resident on the roll** the login matched: a :class:`ReferencePhotoSource` answers
``photo(election_id, voter_alias)`` from an authoritative source (the commission's export of the
register's photos, keyed by voter alias), never by anything the caller chooses or by the caller's own
digital-ID account. :class:`DirectoryReferencePhotoSource` reads ``<voter alias hex>.jpg|.jpeg|.png|.webp``
files from a directory (development, tests, or an operator's export); ``voting._intake_config`` has the
HTTP one. No photo for the alias is ``face.reference`` (fail closed).

The answer, :class:`FaceMatchResult`, carries decision, score, threshold,
liveness and the engine id; the service accepts only ``decision and liveness`` (:func:`require_match`).

What is kept: the public record gets only :meth:`FaceMatchResult.record_entry` — ``{"decision": bool,
"engine": engine_id}`` — never an image, template or score (a score is a biometric by-product that the
record does not need). Images live only in memory for the duration of the call.

:class:`HttpFaceMatcher` POSTs to an external engine::

    request  {"reference": {"media_type": str, "data": base64}, "live": {"media_type": str, "data": base64,
              "liveness_evidence": base64}}
    response {"decision": bool, "score": number, "threshold": number, "liveness": bool, "engine_id": str}

The response must have exactly these keys and types, finite ``score`` and ``threshold`` in [0, 1],
``decision == (score >= threshold)``, and (if configured) the expected engine id; anything else — a
timeout, an HTTP error, malformed JSON — raises :class:`FaceMatchError` (fail closed).
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import httpx

from ._errors import FaceMatchError

__all__ = [
    "REFERENCE_MEDIA_TYPES",
    "DeterministicTestMatcher",
    "DirectoryReferencePhotoSource",
    "FaceMatchResult",
    "FaceMatcher",
    "HttpFaceMatcher",
    "LiveCapture",
    "ReferenceImageSource",
    "ReferencePhotoSource",
    "require_match",
]

#: file suffix → media type of the reference photos a :class:`DirectoryReferencePhotoSource` reads
REFERENCE_MEDIA_TYPES: Final[dict[str, str]] = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}

_RESPONSE_KEYS: Final[frozenset[str]] = frozenset({"decision", "score", "threshold", "liveness", "engine_id"})


@dataclass(frozen=True, slots=True)
class ReferenceImageSource:
    """The reference face image (bytes never appear in ``repr``)."""

    image: bytes = field(repr=False)
    media_type: str = "image/jpeg"


@dataclass(frozen=True, slots=True)
class LiveCapture:
    """The live capture from the voter's device, with the engine-specific liveness evidence."""

    image: bytes = field(repr=False)
    media_type: str = "image/jpeg"
    liveness_evidence: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class FaceMatchResult:
    decision: bool
    score: float
    threshold: float
    liveness: bool
    engine_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.decision, bool) or not isinstance(self.liveness, bool):
            raise FaceMatchError("face.response", "decision and liveness must be booleans")
        for v in (self.score, self.threshold):
            number = isinstance(v, int | float) and not isinstance(v, bool)
            if not number or not math.isfinite(v) or not 0 <= v <= 1:
                raise FaceMatchError("face.response", "score and threshold must be finite numbers in [0, 1]")
        if self.decision != (self.score >= self.threshold):
            raise FaceMatchError("face.response", "decision is inconsistent with score and threshold")
        if not isinstance(self.engine_id, str) or not self.engine_id or len(self.engine_id) > 200:
            raise FaceMatchError("face.response", "engine_id must be a non-empty string")

    @property
    def accepted(self) -> bool:
        return self.decision and self.liveness

    def record_entry(self) -> dict[str, object]:
        """What enters the public record: the overall decision and the engine id, nothing else."""
        return {"decision": self.accepted, "engine": self.engine_id}


@runtime_checkable
class FaceMatcher(Protocol):
    def match(self, reference: ReferenceImageSource, live: LiveCapture) -> FaceMatchResult:
        """Compare; raise :class:`FaceMatchError` if no trustworthy answer can be given."""
        ...


@runtime_checkable
class ReferencePhotoSource(Protocol):
    """The authoritative reference photos of the residents on an election's roll."""

    def photo(self, election_id: str, voter_alias: bytes) -> ReferenceImageSource:
        """The photo of the roll resident ``voter_alias`` (32 bytes); raise :class:`FaceMatchError`
        (``face.reference`` when there is none, ``face.transport``/``face.response`` when the source
        fails) — never a photo of anyone else."""
        ...


class DirectoryReferencePhotoSource:
    """Reference photos as files ``<directory>/<voter alias, 64 lowercase hex>.jpg|.jpeg|.png|.webp``.

    Read on every call (the photo stays in memory for one match), so the directory may be filled after
    the roll is committed (the aliases exist only then). Exactly one regular file per alias, non-empty and
    at most ``max_bytes``; otherwise ``face.reference`` (fail closed).
    """

    def __init__(self, directory: Path, *, max_bytes: int = 8_000_000) -> None:
        self._dir = Path(directory)
        self._max = max_bytes

    def photo(self, election_id: str, voter_alias: bytes) -> ReferenceImageSource:
        if not isinstance(voter_alias, bytes) or len(voter_alias) != 32:
            raise FaceMatchError("face.reference", "a voter alias is 32 bytes")
        stem = voter_alias.hex()
        found = [
            (f, media)
            for ext, media in REFERENCE_MEDIA_TYPES.items()
            if (f := self._dir / (stem + ext)).is_file() and not f.is_symlink()
        ]
        if len(found) != 1:
            raise FaceMatchError("face.reference", "no single reference photo of this roll resident")
        path, media = found[0]
        try:
            data = path.read_bytes()
        except OSError:
            raise FaceMatchError("face.reference", "the reference photo cannot be read") from None
        if not data or len(data) > self._max:
            raise FaceMatchError("face.reference", "the reference photo is empty or too large")
        return ReferenceImageSource(data, media)


def require_match(result: FaceMatchResult) -> FaceMatchResult:
    """Return ``result`` if it accepts the voter, else raise ``face.rejected``."""
    if not result.accepted:
        raise FaceMatchError("face.rejected", "face match negative or liveness check failed")
    return result


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


class HttpFaceMatcher:
    """Adapter for an external matcher service at ``url`` (see the module docstring for the wire format).

    ``transport`` (an ``httpx.BaseTransport``) and ``headers`` (e.g. an API key) are injectable.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        expected_engine_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = url
        self._timeout = timeout
        self._expected = expected_engine_id
        self._headers = dict(headers or {})
        self._transport = transport

    def match(self, reference: ReferenceImageSource, live: LiveCapture) -> FaceMatchResult:
        body = {
            "reference": {"media_type": reference.media_type, "data": _b64(reference.image)},
            "live": {
                "media_type": live.media_type,
                "data": _b64(live.image),
                "liveness_evidence": _b64(live.liveness_evidence),
            },
        }
        try:
            with httpx.Client(timeout=self._timeout, transport=self._transport, headers=self._headers) as c:
                r = c.post(self._url, json=body)
                r.raise_for_status()
        except httpx.HTTPError as e:
            raise FaceMatchError("face.transport", f"matcher request failed: {type(e).__name__}") from None
        try:
            data: Any = r.json()
        except ValueError:
            raise FaceMatchError("face.response", "matcher response is not JSON") from None
        if not isinstance(data, dict) or set(data) != _RESPONSE_KEYS:
            raise FaceMatchError("face.response", f"response must have exactly {sorted(_RESPONSE_KEYS)}")
        result = FaceMatchResult(
            data["decision"], data["score"], data["threshold"], data["liveness"], data["engine_id"]
        )
        if self._expected is not None and result.engine_id != self._expected:
            raise FaceMatchError("face.response", "matcher answered with an unexpected engine id")
        return result


class DeterministicTestMatcher:
    """For tests and the demo only: match iff the two images are byte-identical; liveness iff the capture
    carries non-empty liveness evidence. Non-matching pairs get a score in [0, 0.5) derived from a hash
    of both images, so results are reproducible."""

    def __init__(self, engine_id: str = "tvote-deterministic-test-matcher/1", threshold: float = 0.8) -> None:
        self.engine_id = engine_id
        self.threshold = threshold

    def match(self, reference: ReferenceImageSource, live: LiveCapture) -> FaceMatchResult:
        if reference.image == live.image:
            score = 1.0
        else:
            prefix = len(reference.image).to_bytes(8, "big")
            h = hashlib.sha256(prefix + reference.image + live.image).digest()
            score = h[0] / 512
        return FaceMatchResult(
            score >= self.threshold, score, self.threshold, bool(live.liveness_evidence), self.engine_id
        )

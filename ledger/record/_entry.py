"""Ledger entries: strict JSON input, canonical (RFC 8785) bytes, hash chain.

An entry is the RFC 8785 canonical JSON object::

    {"index": <int>, "payload": <object>, "prev": "<64 lowercase hex>", "type": "<event type>", "version": 1}

* ``version`` is the entry format version (1).
* ``index`` is the entry's position in the log (0-based).
* ``prev`` is the hash of the previous entry (64 zero hex digits for entry 0).
* ``type`` matches ``[a-z0-9][a-z0-9.-]{0,63}``; the election service defines the types.
* ``payload`` is any JSON object. Numbers must be integers in the I-JSON safe range
  ``[-(2^53-1), 2^53-1]``; floats, NaN and infinities are refused (RFC 8785 would accept floats, but
  their canonical text is a trap for other implementations). Object keys are strings, duplicate keys
  are refused, nesting is at most 64 deep.
* The canonical entry is at most ``MAX_ENTRY_BYTES`` (1 MiB).

Every JSON text tvote reads from outside (entries, record files, HTTP bodies, receipts, vector files) goes
through :func:`parse_json`, or through :func:`check_json_bounds` before another decoder: its size and its
nesting (at most ``MAX_JSON_DEPTH`` arrays and objects, counted by :func:`json_depth`, a linear scan that
skips string literals) are bounded **before** the recursive C decoder runs, so no input can exhaust the
stack.

The entry hash is the RFC 9162 leaf hash ``SHA-256(0x00 || canonical_bytes)``: the same 32 bytes name
the entry in the hash chain and are its Merkle leaf.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Final

import rfc8785

from .._errors import InvalidEncoding, InvalidEntry
from ..merkle import leaf_hash

__all__ = [
    "ENTRY_VERSION",
    "MAX_ENTRY_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_SAFE_INTEGER",
    "ZERO_HASH",
    "Entry",
    "canonical_json",
    "canonical_json_checked",
    "check_event_type",
    "check_json_bounds",
    "check_payload",
    "from_hex",
    "json_depth",
    "parse_json",
]

ENTRY_VERSION: Final[int] = 1
MAX_ENTRY_BYTES: Final[int] = 1 << 20
MAX_SAFE_INTEGER: Final[int] = 2**53 - 1
MAX_DEPTH: Final[int] = 64
#: nesting bound of any JSON text read from outside: an entry object around a payload of ``MAX_DEPTH``
MAX_JSON_DEPTH: Final[int] = MAX_DEPTH + 1
ZERO_HASH: Final[bytes] = bytes(32)
_TYPE_RE: Final = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")
_HEX_RE: Final = re.compile(r"[0-9a-f]*")
#: canonical bytes of everything around the payload never exceed this (index <= 2^63, 64-byte type)
_ENVELOPE_BYTES: Final[int] = 256


def from_hex(s: object, n: int, what: str) -> bytes:
    """Decode exactly ``2·n`` lowercase hex digits (InvalidEncoding otherwise); ledger/'s one hex decoder."""
    if not isinstance(s, str) or len(s) != 2 * n or not _HEX_RE.fullmatch(s):
        raise InvalidEncoding(f"{what} must be {2 * n} lowercase hex digits")
    return bytes.fromhex(s)


def _reject_constant(name: str) -> Any:
    raise InvalidEntry(f"{name} is not allowed in JSON")


def _reject_float(text: str) -> Any:
    raise InvalidEntry(f"non-integer number {text!r}: only integers are allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise InvalidEntry(f"duplicate key {k!r}")
        out[k] = v
    return out


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_float=_reject_float, parse_constant=_reject_constant
)


def _safe_int(text: str) -> int:
    v = int(text)
    if not -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
        raise InvalidEntry(f"integer {v} outside the safe range ±(2^53-1)")
    return v


# An entry's decoder: besides _DECODER's rules it refuses integers outside the safe range as it meets them.
# What it returns is then exactly what _check_value accepts, up to nesting (Entry.from_bytes).
_ENTRY_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_float=_reject_float,
    parse_constant=_reject_constant,
    parse_int=_safe_int,
)
#: the same without the duplicate-key check, for Entry.parse's first try (see there)
_ENTRY_DECODER_UNCHECKED_KEYS: Final = json.JSONDecoder(
    parse_float=_reject_float, parse_constant=_reject_constant, parse_int=_safe_int
)


# A string literal from its opening quote to its closing quote, or to the end of the text if it is never
# closed (a lone trailing backslash included). From any quote the pattern matches and its parts cannot
# overlap, so one pass of ``sub`` is linear in the text. UTF-8 multi-byte sequences hold no ASCII byte, so
# the bytes of a text show exactly its quotes, backslashes and brackets.
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_ALL_BUT_BRACKETS: Final[bytes] = bytes(c for c in range(256) if c not in b"[]{}")
_ALL_BUT_QUOTES_AND_BRACKETS: Final[bytes] = bytes(c for c in range(256) if c not in b'"[]{}')
_STEP: Final[tuple[int, ...]] = tuple(1 if c in b"[{" else -1 if c in b"]}" else 0 for c in range(256))


def _depth(text: bytes | bytearray | str) -> int:
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if b"\\" in raw:  # escapes: drop each string literal whole (linear regex)
        outside = _STRING.sub(b"", raw).translate(None, _ALL_BUT_BRACKETS)
    else:  # no escapes: a string literal runs from a quote to the next one, so split on the quotes
        outside = b"".join(raw.translate(None, _ALL_BUT_QUOTES_AND_BRACKETS).split(b'"')[::2])
    # the highest count of open brackets over the prefixes (a running sum in C, not a Python loop)
    return max(accumulate(map(_STEP.__getitem__, outside), initial=0))


def json_depth(text: bytes | bytearray | str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text``; brackets inside string literals are not
    counted, and an escaped quote does not end a string. Linear time and no recursion, for any input.

    For text a JSON decoder accepts this is exactly the nesting of the parsed value. For any other text it
    is the highest count of open brackets over its prefixes (a closing bracket without an opener subtracts,
    an unterminated string runs to the end): at least the depth a decoder reaches before it stops at the
    first error, since up to there both see the same string literals. ``tests/ledger/test_json_bounds.py``
    cross-checks it with a character-by-character reference.
    """
    return _depth(text)


def check_json_bounds(
    raw: bytes | str, *, max_bytes: int = MAX_ENTRY_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> None:
    """Refuse (InvalidEntry) JSON text over ``max_bytes`` (bytes; characters for ``str``) or nested deeper
    than ``max_depth``, without parsing it. Call it before any JSON decoder meets outside input."""
    _bounded_depth(raw, max_bytes, max_depth)


def _bounded_depth(raw: bytes | str, max_bytes: int, max_depth: int) -> int:
    """:func:`check_json_bounds`, returning the text's depth (:func:`json_depth`)."""
    if not isinstance(raw, bytes | bytearray | str):
        raise InvalidEntry(f"JSON text must be bytes or str, not {type(raw).__name__}")
    if len(raw) > max_bytes:
        raise InvalidEntry(f"JSON text of {len(raw)} bytes exceeds the {max_bytes}-byte limit")
    depth = _depth(raw)
    if depth > max_depth:
        raise InvalidEntry(f"JSON text nests arrays and objects deeper than {max_depth} levels")
    return depth


def parse_json(raw: bytes | str, *, max_bytes: int = MAX_ENTRY_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse untrusted JSON strictly (UTF-8, no duplicate keys, no floats/NaN), raising InvalidEntry.

    The text is bounded first (:func:`check_json_bounds`: at most ``max_bytes``, nested at most
    ``max_depth`` deep), so the decoder never recurses on hostile input. The one bounded JSON reader of
    tvote: the ledger, the record reader, the verifier and the tests' vector files use it.
    """
    return _parse_bounded(raw, _DECODER, max_bytes=max_bytes, max_depth=max_depth)


def _parse_bounded(raw: bytes | str, decoder: json.JSONDecoder, *, max_bytes: int, max_depth: int) -> Any:
    _bounded_depth(raw, max_bytes, max_depth)
    return _decode(raw, decoder)


def _decode(raw: bytes | str, decoder: json.JSONDecoder) -> Any:
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidEntry(f"JSON text is not UTF-8: {e}") from None
    else:
        text = raw
    try:
        if text.startswith("\ufeff"):
            raise InvalidEntry("malformed JSON: a byte order mark is not allowed")
        return decoder.decode(text)
    except InvalidEntry:
        raise
    except (ValueError, RecursionError) as e:
        raise InvalidEntry(f"malformed JSON: {e}") from None


def _check_value(v: Any, depth: int, where: str) -> None:
    if depth > MAX_DEPTH:
        raise InvalidEntry(f"{where}: nested deeper than {MAX_DEPTH}")
    if v is None or isinstance(v, bool | str):
        return
    if isinstance(v, int):
        if not -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
            raise InvalidEntry(f"{where}: integer {v} outside the safe range ±(2^53-1)")
        return
    if isinstance(v, float):
        raise InvalidEntry(f"{where}: non-integer number {v!r}: only integers are allowed")
    if isinstance(v, list | tuple):
        for i, x in enumerate(v):
            _check_value(x, depth + 1, f"{where}[{i}]")
        return
    if isinstance(v, Mapping):
        for k, x in v.items():
            if not isinstance(k, str):
                raise InvalidEntry(f"{where}: object key {k!r} is not a string")
            _check_value(x, depth + 1, f"{where}.{k}")
        return
    raise InvalidEntry(f"{where}: {type(v).__name__} is not a JSON value")


def check_payload(payload: Any) -> dict[str, Any]:
    """Validate a payload (a JSON object of allowed values); return a plain-dict deep copy."""
    if not isinstance(payload, Mapping):
        raise InvalidEntry(f"payload must be a JSON object, not {type(payload).__name__}")
    _check_value(payload, 1, "payload")
    # checked above: the C encoder's serialisation is the RFC 8785 one (canonical_json_checked)
    copied: dict[str, Any] = json.loads(canonical_json_checked(payload))
    return copied


def check_event_type(event_type: Any) -> str:
    if not isinstance(event_type, str) or not _TYPE_RE.fullmatch(event_type):
        raise InvalidEntry(f"event type {event_type!r} must match [a-z0-9][a-z0-9.-]{{0,63}}")
    return event_type


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical bytes (raises InvalidEntry for values it cannot canonicalize)."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, rfc8785.IntegerDomainError, TypeError, ValueError) as e:
        raise InvalidEntry(f"cannot canonicalize: {e}") from None


_NON_BMP_UTF8: Final = re.compile(rb"[\xf0-\xf7]")  # the lead byte of every 4-byte UTF-8 sequence


def canonical_json_checked(value: Any) -> bytes:
    """RFC 8785 bytes of a value already checked by :func:`check_payload`'s rules (str keys, integers in
    the safe range, no floats), by Python's C JSON encoder where it provably agrees with RFC 8785.

    For such values the two serialisations are byte-identical except (a) object key order, which RFC 8785
    takes over UTF-16 code units and Python over code points (they differ only for characters outside
    the Basic Multilingual Plane), and (b) lone surrogates, which RFC 8785 escapes and Python cannot
    encode. Either case falls back to the reference :func:`canonical_json`; the two are cross-checked by
    a Hypothesis property in ``tests/ledger/test_record.py``.
    """
    try:
        out = json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
        ).encode("utf-8")
    except (UnicodeEncodeError, ValueError, TypeError):
        return canonical_json(value)
    if not out.isascii() and _NON_BMP_UTF8.search(out):
        return canonical_json(value)
    return out


def payload_size_ok(payload_canonical: bytes, event_type: str) -> None:
    """Refuse, before sequencing, a payload whose entry could exceed the limit."""
    if len(payload_canonical) + len(event_type) + _ENVELOPE_BYTES > MAX_ENTRY_BYTES:
        raise InvalidEntry(
            f"entry would exceed {MAX_ENTRY_BYTES} bytes (payload is {len(payload_canonical)} bytes)"
        )


def _envelope(obj: Any) -> tuple[int, bytes]:
    """An entry object's envelope (its keys, version, index, prev, type and that its payload is an object):
    its index and prev, or InvalidEntry."""
    if not isinstance(obj, dict) or set(obj) != {"index", "payload", "prev", "type", "version"}:
        raise InvalidEntry("entry must have exactly index, payload, prev, type, version")
    if obj["version"] != ENTRY_VERSION or isinstance(obj["version"], bool):
        raise InvalidEntry(f"unsupported entry version {obj['version']!r}")
    index = _check_index(obj["index"])
    prev = from_hex(obj["prev"], 32, "prev")
    check_event_type(obj["type"])
    if not isinstance(obj["payload"], dict):
        raise InvalidEntry("payload must be a JSON object")
    return index, prev


def _check_index(index: Any) -> int:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= MAX_SAFE_INTEGER:
        raise InvalidEntry(f"index {index!r} out of range")
    return index


def _check_position(index: Any, prev: Any) -> None:
    _check_index(index)
    if not isinstance(prev, bytes) or len(prev) != 32:
        raise InvalidEntry("prev must be a 32-byte hash")


@dataclass(frozen=True, slots=True)
class Entry:
    """One immutable, validated ledger entry. ``canonical`` is the exact bytes that are hashed."""

    index: int
    prev: bytes
    type: str
    canonical: bytes = field(repr=False)
    hash: bytes = field(repr=False)

    @classmethod
    def create(cls, index: int, prev: bytes, event_type: str, payload: Mapping[str, Any]) -> Entry:
        _check_position(index, prev)
        check_event_type(event_type)
        payload_json = canonical_json_checked(check_payload(payload))
        return cls._of_canonical_payload(index, prev, event_type, payload_json)

    @classmethod
    def _of_canonical_payload(cls, index: int, prev: bytes, event_type: str, payload_json: bytes) -> Entry:
        """:meth:`create` from the payload's canonical bytes (``canonical_json_checked`` of
        :func:`check_payload`'s copy, what the sequencer made to check the entry's size): the payload is not
        serialised again. An object's RFC 8785 form is its members in key order, and the envelope's keys
        (index, payload, prev, type, version) are ASCII, so the entry's bytes are the envelope's members
        around the payload's bytes: byte for byte ``canonical_json_checked`` of the whole entry object."""
        _check_position(index, prev)
        data = b"".join(
            (
                b'{"index":',
                str(index).encode("ascii"),
                b',"payload":',
                payload_json,
                b',"prev":"',
                prev.hex().encode("ascii"),
                b'","type":',
                canonical_json_checked(check_event_type(event_type)),
                b',"version":',
                str(ENTRY_VERSION).encode("ascii"),
                b"}",
            )
        )
        if len(data) > MAX_ENTRY_BYTES:
            raise InvalidEntry(f"entry of {len(data)} bytes exceeds the {MAX_ENTRY_BYTES}-byte limit")
        return cls(index, prev, event_type, data, leaf_hash(data))

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        """Parse stored/exported canonical bytes; refuse anything not exactly canonical (InvalidEncoding)."""
        return cls.parse(data)[0]

    @classmethod
    def parse(cls, data: bytes) -> tuple[Entry, dict[str, Any]]:
        """:meth:`from_bytes` and the decoded entry object (a fresh parse the caller owns: index, payload,
        prev, type, version), for a reader that needs the payload too and would otherwise decode it again."""
        if not isinstance(data, bytes):
            raise InvalidEncoding("entry must be bytes")
        # First without the duplicate-key check (a Python call per object): a text with a duplicate key
        # never equals the serialisation of what it decodes to (a dict holds each key once), so whenever an
        # entry passes this way the strict decoder gives the same object; any failure is the strict path's
        # to word.
        with contextlib.suppress(Exception):  # decided again, and worded, by the strict path below
            return cls._parse(data, _ENTRY_DECODER_UNCHECKED_KEYS)
        return cls._parse(data, _ENTRY_DECODER)

    @classmethod
    def _parse(cls, data: bytes, decoder: json.JSONDecoder) -> tuple[Entry, dict[str, Any]]:
        try:
            # the entry decoder refuses floats, NaN, duplicate keys and unsafe integers while parsing, and
            # gives only str keys and JSON values: what _check_value checks, but nesting; the text's depth
            # bounds that (a value _check_value sees at depth d lies inside at least d levels of the text's
            # arrays and objects), so the walk is needed only for text nested deeper than MAX_DEPTH
            depth = _bounded_depth(data, MAX_ENTRY_BYTES, MAX_JSON_DEPTH)
            obj = _decode(data, decoder)
            index, prev = _envelope(obj)
            if depth > MAX_DEPTH:
                _check_value(obj["payload"], 1, "payload")
            # one serialisation of the fresh parse (plain dicts, lists, str, int): canonical iff identical
            canonical = canonical_json_checked(obj)
        except InvalidEntry as e:
            raise InvalidEncoding(f"invalid entry: {e}") from None
        if canonical != data:
            raise InvalidEncoding("entry is not in RFC 8785 canonical form")
        return cls(index, prev, obj["type"], data, leaf_hash(data)), obj

    @classmethod
    def parse_canonical(cls, data: bytes, leaf: bytes) -> tuple[Entry, dict[str, Any]]:
        """:meth:`parse` of a text the caller has already found to be canonical: the RFC 8785 text of a
        value :func:`check_payload`'s rules allow, nesting at most ``MAX_DEPTH`` levels, of at most
        ``MAX_ENTRY_BYTES`` bytes, with ``leaf`` its :func:`leaf_hash` (a native engine's check,
        ``crypto.BallotEngine.canonical_leaf_hashes``, which is cross-checked against :meth:`parse` by
        ``tests/native/test_native_canonical.py``). Such a text decodes to the same object with any JSON
        decoder, so only the entry's envelope is checked here; InvalidEncoding as :meth:`parse` raises it."""
        try:
            if len(data) > MAX_ENTRY_BYTES:
                raise InvalidEntry(f"JSON text of {len(data)} bytes exceeds the {MAX_ENTRY_BYTES}-byte limit")
            obj = json.loads(data)
            index, prev = _envelope(obj)
        except InvalidEntry as e:
            raise InvalidEncoding(f"invalid entry: {e}") from None
        return cls(index, prev, obj["type"], data, leaf), obj

    @property
    def payload(self) -> dict[str, Any]:
        """A fresh copy of the payload."""
        obj: dict[str, Any] = json.loads(self.canonical)
        return obj["payload"]  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.canonical)
        return obj

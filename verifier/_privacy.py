"""V23 record.privacy: "No payload key names a personal-data field and no value looks like a name
field, address, birth date, 12-digit number or IP address."

This is a screen, not a proof: it cannot recognise every personal name, so it rejects the *fields* that
would carry one (``name`` is allowed only where the protocol publishes public role names: the manifest
and ``trustee.registered``) and the *value shapes* of the other personal data. Hex blobs are skipped
(a 64-hex hash may well contain twelve decimal digits in a row).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterator
from functools import lru_cache
from itertools import compress
from typing import Any, Final

__all__ = ["scan_entry", "scan_payload"]

#: Payload keys that would only ever hold personal data (compared after lower-casing and removing
#: ``_``/``-``).
_FORBIDDEN_KEYS: Final[frozenset[str]] = frozenset(
    {
        "address",
        "addr",
        "streetaddress",
        "postaladdress",
        "postalcode",
        "zip",
        "zipcode",
        "birth",
        "birthdate",
        "dateofbirth",
        "dob",
        "birthday",
        "mynumber",
        "individualnumber",
        "kojinbango",
        "sex",
        "gender",
        "ip",
        "ipaddress",
        "ipaddr",
        "remoteaddr",
        "remoteip",
        "clientip",
        "xforwardedfor",
        "useragent",
        "fullname",
        "familyname",
        "givenname",
        "firstname",
        "lastname",
        "votername",
        "kana",
        "furigana",
        "phone",
        "phonenumber",
        "tel",
        "email",
        "mail",
        "certificate",
        "cert",
        "subject",
        "photo",
        "image",
        "template",
        "faceimage",
        "facetemplate",
        "residentid",
    }
)
_NAME_ALLOWED_TYPES: Final[frozenset[str]] = frozenset({"election.manifest", "trustee.registered"})
#: Keys whose values are recomputed from hashes by other checks (V14), so their shape carries no data.
_DERIVED_KEYS: Final[frozenset[str]] = frozenset({"trackingcode"})

_HEX = re.compile(r"[0-9a-f]+")
_HEX_MATCH = _HEX.fullmatch
_TWELVE_DIGITS = re.compile(r"(?<![0-9A-Za-z])\d{4}[ -]?\d{4}[ -]?\d{4}(?![0-9A-Za-z])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
_DATE_ONLY = re.compile(
    r"(?<![\dT:])(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?![\dT:])"
    r"|(?:明治|大正|昭和|平成|令和)\s*(?:元|\d{1,2})\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"
)
_ADDRESS = re.compile(
    r"〒|(?<![\d-])\d{3}-\d{4}(?![\d-])|丁目|番地|\d+番\d+号|(?<![\d-])\d{1,3}-\d{1,3}-\d{1,3}(?![\d:T-])"
)
_IPV6_TOKEN = re.compile(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*")


def _norm_key(k: str) -> str:
    return k.lower().replace("_", "").replace("-", "")


def _value_problem(s: str, *, dates_ok: bool = False) -> str | None:
    if _HEX.fullmatch(s):
        if len(s) == 12 and s.isdigit():
            return "a 12-digit number"
        return None
    if _TWELVE_DIGITS.search(s):
        return "a 12-digit number"
    for m in _IPV4.finditer(s):
        if all(int(o) <= 255 for o in m.group(0).split(".")):
            return "an IPv4 address"
    for m in _IPV6_TOKEN.finditer(s):
        tok = m.group(0)
        if tok.count(":") >= 2:
            try:
                ipaddress.IPv6Address(tok)
            except ValueError:
                continue
            return "an IPv6 address"
    if not dates_ok and _DATE_ONLY.search(s):
        return "a date without time (birth-date shape)"
    if _ADDRESS.search(s):
        return "an address or postal code"
    return None


@lru_cache(maxsize=4096)
def _key_facts(k: str) -> tuple[str, str | None]:
    """(normalised key, the problem its text has or None): keys repeat in every entry, so once each."""
    return _norm_key(k), _value_problem(k)


# A path is built only when something is reported: (parent, step) links, a step being an object key (str)
# or a list index (int), rendered on demand.
_Path = tuple[Any, str | int] | None


def _render(path: _Path) -> str:
    steps: list[str] = []
    while path is not None:
        path, step = path
        steps.append(f"[{step}]" if isinstance(step, int) else f".{step}")
    return "$" + "".join(reversed(steps))


def scan_payload(event_type: str, payload: Any) -> Iterator[tuple[str, str]]:
    """Yield ``(json_path, problem)`` for every suspicious key or value of one entry's payload."""
    stack: list[tuple[_Path, Any]] = [(None, payload)]
    name_ok = event_type in _NAME_ALLOWED_TYPES
    dates_ok = event_type == "election.manifest"  # the commission's public document: election days are dates
    while stack:
        path, v = stack.pop()
        t = type(v)
        if t is str:
            if _HEX_MATCH(v) and not (len(v) == 12 and v.isdigit()):  # the common case: hashes, points
                continue
            p = _value_problem(v, dates_ok=dates_ok)
            if p:
                yield _render(path), f"value looks like {p}"
        elif t is dict:
            for k, x in v.items():
                nk, kp = _key_facts(str(k))
                if nk in _FORBIDDEN_KEYS or (nk in {"name", "names"} and not name_ok):
                    yield _render((path, k)), f"key '{k}' names a personal-data field"
                if kp:
                    yield _render((path, k)), f"key looks like {kp}"
                if nk not in _DERIVED_KEYS:
                    stack.append(((path, k), x))
        elif t is list:
            stack.extend(((path, i), x) for i, x in enumerate(v))
        elif isinstance(v, bool) or v is None:
            continue
        elif isinstance(v, int):
            if 10**11 <= abs(v) < 10**12:
                yield _render(path), "value looks like a 12-digit number"
        elif isinstance(v, str):  # a str subclass (not from a JSON parser)
            p = _value_problem(v, dates_ok=dates_ok)
            if p:
                yield _render(path), f"value looks like {p}"


_TWELVE_DIGIT_RUN = re.compile(rb"\d{12}")
#: a literal of exactly twelve digits, in the literals joined and surrounded by quotes (which none holds)
_TWELVE_DIGIT_LITERAL = re.compile(rb'(?<=")\d{12}(?=")')
_HEX_DIGITS: Final[bytes] = b"0123456789abcdef"
#: the literals found clean (as key and value) so far, by ``(name_ok, dates_ok)``: bounded
_CLEAN: dict[tuple[bool, bool], set[bytes]] = {}
_CLEAN_MAX: Final[int] = 65536


def _screen(line: bytes) -> set[bytes] | None:
    """The literals of ``line`` that a screen must look at, or None when the payload must be walked.

    In a text without backslashes every quote opens or closes a literal, so splitting at the quotes gives
    the literals at the odd places and the text outside them at the even places. For a text with a
    backslash, an odd number of quotes (not JSON) or a run of twelve digits in the outside parts joined:
    None. Otherwise the distinct literals that are empty, are not lowercase hex, or are exactly twelve
    digits (a hash or a point needs no look). The native engine's ``screen_literals``
    (``native/src/screen.rs``) computes the same; ``tests/native/test_native_screen.py`` holds them
    together."""
    if b"\\" in line:
        return None
    parts = line.split(b'"')
    if not len(parts) % 2 or _TWELVE_DIGIT_RUN.search(b"".join(parts[0::2])):
        return None
    literals = list(set(parts[1::2]))
    joined = b'"'.join(literals)
    # without a Python step per hex literal (a ballot holds about a hundred): deleting the hex digits leaves
    # an empty residue exactly for the hex literals (and the empty one)
    residue = joined.translate(None, _HEX_DIGITS).split(b'"')
    others = set(compress(literals, residue))
    others.update(_TWELVE_DIGIT_LITERAL.findall(b'"' + joined + b'"'))
    if b"" in literals:
        others.add(b"")
    return others


def _all_clean(literals: Collection[bytes], name_ok: bool, dates_ok: bool) -> bool:
    """Whether every literal passes scan_payload's rules both as a key and as a value (a bounded memo of
    the literals found clean: a ballot's keys and identifiers are one set operation)."""
    clean = _CLEAN.setdefault((name_ok, dates_ok), set())
    others = set(literals)
    if others <= clean:
        return True
    if not all(
        _literal_is_clean(t.decode("utf-8", "surrogatepass"), name_ok, dates_ok) for t in others - clean
    ):
        return False
    if len(clean) < _CLEAN_MAX:
        clean.update(others)
    return True


@lru_cache(maxsize=8192)
def _literal_is_clean(s: str, name_ok: bool, dates_ok: bool) -> bool:
    """Whether ``s`` passes scan_payload both as a key and as a value (of the hex strings only twelve digits
    reach here)."""
    nk, kp = _key_facts(s)
    if kp or nk in _FORBIDDEN_KEYS or (nk in {"name", "names"} and not name_ok):
        return False
    return _value_problem(s, dates_ok=dates_ok) is None


def scan_entry(
    event_type: str, line: bytes, payload: Any, screened: Collection[bytes] | None = None
) -> Iterator[tuple[str, str]]:
    """:func:`scan_payload` of the entry whose JSON text is ``line``, screened on the text first.

    Most entries (ballots: hashes, points, identifiers, small integers) hold nothing suspicious, and a
    look at the text's string literals shows it without walking the payload (:func:`_screen`): when every
    literal the screen leaves passes scan_payload's rules both as a key and as a value, the walk could
    report nothing. Anything else (an escape, a suspicious literal, a long number, even one scan_payload
    would let pass) is walked by scan_payload, which names the path.

    ``screened``: what :func:`_screen` gives for ``line`` when an engine has computed it already (the
    native engine's ``screen_literals``, for a batch of lines at once); None: computed here.
    """
    name_ok = event_type in _NAME_ALLOWED_TYPES
    dates_ok = event_type == "election.manifest"
    others = _screen(line) if screened is None else screened
    if others is not None and _all_clean(others, name_ok, dates_ok):
        return
    yield from scan_payload(event_type, payload)

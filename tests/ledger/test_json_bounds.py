"""Bounded JSON input (issue 9, finding 3): nesting and size are checked before any decoder runs, and
nothing in tvote raises the interpreter's recursion limit.

``{"a":`` + 100,000 × ``[`` + 100,000 × ``]`` + ``}`` used to kill the server and ``tvote-verify`` with a
segmentation fault: importing ``py_ecc`` raised the recursion limit to 100,000, so the C JSON decoder
overflowed the stack before Python's guard tripped. The HTTP side is tested against the real server in
``tests/voting/test_intake_adversarial.py``; the verifier side in ``tests/verifier/test_verifier_cli.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.record import (
    MAX_JSON_DEPTH,
    InvalidEntry,
    WitnessPolicy,
    WitnessSigner,
    aggregate_cosignatures,
    check_json_bounds,
    json_depth,
    parse_json,
    verify_cosignature,
)

#: the exact body of the issue: about 200 KB, under the 1 MiB body limit
DEEP = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def reference_depth(text: str) -> int:
    """The slow, obviously correct statement: walk the characters, track string literals and escapes,
    count open brackets outside strings; the answer is the highest count reached."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def nesting(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    return 0


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("", 0),
        ("1", 0),
        ('"[[[{{{"', 0),  # brackets inside a string are not counted
        ('["[", "]]]]", {"}": "{"}]', 2),
        (r'["a\"[[[", []]', 2),  # an escaped quote does not end the string
        (r'["a\\", [[]]]', 3),  # an escaped backslash does: the quote after it closes the string
        (r'{"k\\\"[": [1]}', 2),  # \\ then \" : still inside the string
        (r'["\u005b\u007b", [{}]]', 3),  # escaped brackets are characters of the string
        ('["unterminated [[[[', 1),  # an unterminated string runs to the end
        ('["unterminated \\', 1),  # a lone trailing backslash too
        ("]]]][[", 0),  # closers first: a decoder stops at the first one
        ('{"a":' + "[" * 70 + "]" * 70 + "}", 71),
        ('{"名前": ["[", {"ü": [[]]}]}', 5),  # UTF-8 multi-byte characters are never mistaken for brackets
    ],
)
def test_depth_of_examples(text: str, depth: int) -> None:
    assert reference_depth(text) == depth
    assert json_depth(text) == depth
    assert json_depth(text.encode("utf-8")) == depth


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\/ab\u00fc\u2028\U0001f600'),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet='[]{}"\\a'), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(JSON_VALUES, st.booleans())
def test_depth_of_valid_json_is_its_nesting(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert json_depth(text) == nesting(value) == reference_depth(text)
    assert json_depth(text.encode("utf-8")) == nesting(value)


@given(st.text(alphabet='[]{}"\\ a,:\u00e9'))
def test_scanner_equals_the_reference_on_any_text(text: str) -> None:
    """Valid or not: the fast scanner (split on quotes, or a regex when there are escapes) and the
    character walk agree exactly."""
    assert json_depth(text) == reference_depth(text)
    assert json_depth(text.encode("utf-8")) == reference_depth(text)


@given(st.text(alphabet='[]{}"\\ 1,:'))
def test_a_decoder_never_goes_deeper_than_the_scan(text: str) -> None:
    """Soundness: whatever json.loads accepts nests exactly as deep as the scan says."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return
    assert nesting(value) == json_depth(text)


def test_the_deep_body_is_refused_before_parsing() -> None:
    assert len(DEEP) < 1 << 20  # under the size limit: only the depth refuses it
    for raw in (DEEP, DEEP.decode()):
        with pytest.raises(InvalidEntry, match=f"deeper than {MAX_JSON_DEPTH}"):
            parse_json(raw)
        with pytest.raises(InvalidEntry, match="deeper"):
            check_json_bounds(raw)
    # the bound is exact: a payload of the entry format's depth still parses, one more level does not
    ok = '{"a":' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    assert json_depth(ok) == MAX_JSON_DEPTH
    parse_json(ok)
    with pytest.raises(InvalidEntry, match="deeper"):
        parse_json("[" + ok + "]")
    # a string full of brackets is not nesting
    parse_json(json.dumps({"a": "[" * 100_000}))


def test_size_is_bounded_before_parsing() -> None:
    with pytest.raises(InvalidEntry, match="exceeds"):
        check_json_bounds(b"[" + b"1," * 100 + b"1]", max_bytes=100)
    with pytest.raises(InvalidEntry, match="exceeds"):
        parse_json("x" * ((1 << 20) + 1))
    with pytest.raises(InvalidEntry, match="bytes or str"):
        check_json_bounds(123)  # type: ignore[arg-type]


def test_no_tvote_package_raises_the_recursion_limit() -> None:
    """In a fresh interpreter: the limit after importing every tvote package (and using BLS) is the
    limit before. py_ecc raises it to 100,000 on import; ledger.record._cosign restores it."""
    code = """
import sys
before = sys.getrecursionlimit()
import crypto, crypto.hazmat, ledger, ledger.merkle, ledger.record, verifier, verifier.cli
import kiosk, voting, voting.app, voting.cli, voting.clients.voter
from ledger.log import Ledger
from ledger.record import WitnessSigner
WitnessSigner.generate("w").public
print(before, sys.getrecursionlimit())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = out.stdout.split()
    assert before == after == "1000", out.stdout


def _deep(frames: int, fn: Any) -> Any:
    return fn() if frames <= 0 else _deep(frames - 1, fn)


def test_bls_works_at_the_default_recursion_limit_with_room_to_spare() -> None:
    """Sign, verify, aggregate and proof of possession, called 300 frames deep, under the default limit
    (py_ecc's recursive point multiplication is about 650 frames deep)."""
    assert sys.getrecursionlimit() == 1000

    def everything() -> None:
        a = WitnessSigner.generate("a", lambda n: b"\x01" * n)
        b = WitnessSigner.generate("b", lambda n: b"\x02" * n)
        keys = (a.public, b.public)  # KeyValidate + PopProve + PopVerify
        body = "origin\n1\nroot\n"
        sigs = {"a": a.cosign(body), "b": b.cosign(body)}
        verify_cosignature(keys[0], body, sigs["a"])
        aggregate_cosignatures(sigs).verify(body, WitnessPolicy(keys, 2))

    _deep(300, everything)


def test_bls_is_imported_only_when_used() -> None:
    """py_ecc costs about a second of CPU to import: a process that reads records or verifies ballots but
    checks no cosignature (the verifier's ballot workers) does not import it; the first BLS call does,
    and the curve order ledger.record._cosign states is py_ecc's."""
    code = """
import sys
import ledger, ledger.record, verifier, verifier._ballots
print("py_ecc" in sys.modules)
from ledger.record import _cosign
from ledger.record import WitnessSigner
WitnessSigner.generate("w", lambda n: b"\\x01" * n).public
from py_ecc.optimized_bls12_381.optimized_curve import curve_order
print("py_ecc" in sys.modules, int(curve_order) == _cosign.curve_order, sys.getrecursionlimit())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True", "1000"], out.stdout

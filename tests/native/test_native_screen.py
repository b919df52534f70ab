"""The verifier's V23 text screen through both engines.

The native engine's ``screen_literals`` (``native/src/screen.rs``) must give exactly what the reference
``verifier._privacy._screen`` gives (the literals to look at, or None: walk the payload), and
``scan_entry`` with the native screen must report exactly what the walk (``scan_payload``) reports.
Hypothesis feeds both entries written as the record writes them and otherwise (escapes, whitespace), the
same texts mutated byte by byte, and arbitrary bytes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto._native import NativeEngine, PythonEngine
from ledger.record import canonical_json
from tests.strategies import privacy_entries, privacy_texts, privacy_values
from verifier._privacy import _screen, scan_entry, scan_payload

payloads = st.dictionaries(privacy_texts, privacy_values, max_size=4)


def _native_screen(native: NativeEngine, text: bytes) -> set[bytes] | None:
    got = native.screen_literals([text])
    assert got is not None
    (lits,) = got
    if lits is not None:
        assert lits == sorted(set(lits)), "distinct and sorted"
    return None if lits is None else set(lits)


@settings(max_examples=400, deadline=None)
@given(privacy_entries())
def test_same_screen_and_same_report(native: NativeEngine, entry: tuple[str, dict[str, Any], bytes]) -> None:
    etype, payload, line = entry
    screened = _native_screen(native, line)
    assert screened == _screen(line)
    assert list(scan_entry(etype, line, payload, screened)) == list(scan_payload(etype, payload))


@settings(max_examples=300, deadline=None)
@given(payload=payloads, data=st.data())
def test_same_screen_of_mutated_texts(
    native: NativeEngine, payload: dict[str, Any], data: st.DataObject
) -> None:
    text = canonical_json({"payload": payload})
    for _ in range(4):
        pos = data.draw(st.integers(min_value=0, max_value=len(text)))
        byte = data.draw(st.sampled_from(b'"\\0123456789afg ,:'))
        mutated = text[:pos] + bytes([byte]) + text[pos:]
        assert _native_screen(native, mutated) == _screen(mutated)


@given(st.binary(max_size=80))
def test_same_screen_of_arbitrary_bytes(native: NativeEngine, text: bytes) -> None:
    assert _native_screen(native, text) == _screen(text)


@pytest.mark.parametrize(
    ("text", "screened"),
    [
        (
            b'{"k":"00ff","l":["x","x",""],"m":"123456789012","n":"12345678901"}',
            {b"", b"123456789012", b"k", b"l", b"m", b"n", b"x"},
        ),
        (b'{"a":123456789012}', None),  # twelve digits outside the literals
        (b'[123456,"x",789012]', {b"x"}),
        (b'123456"x"789012', None),  # the outside parts joined, as the reference joins them
        (b'{"a":"x\\"y"}', None),
        (b'{"a":"x}', None),
    ],
)
def test_edge_texts(native: NativeEngine, text: bytes, screened: set[bytes] | None) -> None:
    assert _screen(text) == screened
    assert _native_screen(native, text) == screened


def test_the_reference_engine_leaves_the_screen_to_the_reference() -> None:
    assert PythonEngine().screen_literals([b"{}"]) is None


def test_malformed_arguments_are_refused(native: NativeEngine) -> None:
    with pytest.raises(TypeError):
        native.screen_literals(["{}"])  # type: ignore[list-item]

"""Canonical ledger entries through both engines (the verifier's V1 in its workers).

The native engine's ``canonical_leaf_hashes`` (``native/src/canonical.rs``) vouches for the texts it finds
canonical, and ``ledger.record.Entry.parse_canonical`` then checks only their envelope. So it must be
**sound**: every text it accepts is exactly what the reference (``Entry.parse``: the strict decoder, the
nesting bound, RFC 8785 re-serialisation) accepts as canonical, with the same leaf hash; and on the texts a
record holds it must be complete enough to matter (every canonical text of BMP strings and plain keys).
Hypothesis feeds it canonical texts of random values, the same texts mutated byte by byte, and hostile ones.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from crypto._native import NativeEngine, PythonEngine
from ledger.merkle import leaf_hash
from ledger.record import (
    MAX_DEPTH,
    Entry,
    LedgerError,
    canonical_json,
    canonical_line_facts,
    json_depth,
    line_facts,
    parse_json,
)

#: characters of the Basic Multilingual Plane (no surrogates), control characters and quotes included
bmp_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=12)
#: keys the native check compares itself (no escape needed)
plain_keys = st.text(
    st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs", "Cc"], exclude_characters='"\\'),
    max_size=8,
)
safe_ints = st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
scalars = st.one_of(st.none(), st.booleans(), safe_ints, bmp_text)


def values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
        max_leaves=20,
    )


def reference_leaf(text: bytes, max_depth: int = MAX_DEPTH) -> bytes | None:
    """The reference's verdict: the leaf hash if ``text`` is the canonical text of a value the ledger
    allows, nesting at most ``max_depth`` levels; else None."""
    try:
        obj = parse_json(text)  # the strict reader: no floats, no duplicate keys, bounded
    except LedgerError:
        return None
    if json_depth(text) > max_depth or canonical_json(obj) != text:
        return None
    return leaf_hash(text)


@settings(max_examples=300, deadline=None)
@given(values(plain_keys))
def test_canonical_texts_are_accepted_with_their_leaf_hash(native: NativeEngine, value: Any) -> None:
    text = canonical_json(value)
    assert reference_leaf(text) == leaf_hash(text)
    assert native.canonical_leaf_hashes([text], MAX_DEPTH) == [leaf_hash(text)]


@settings(max_examples=300, deadline=None)
@given(values(bmp_text | st.text(max_size=4)), st.data())
def test_whatever_is_accepted_is_canonical(native: NativeEngine, value: Any, data: st.DataObject) -> None:
    """Soundness: canonical texts of any keys (escapes, characters outside the BMP), then mutated (a byte
    replaced, inserted or dropped; whitespace; another serialisation of the same value)."""
    text = canonical_json(value)
    texts = [
        text,
        json.dumps(value).encode(),
        json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"),
    ]
    for _ in range(4):
        pos = data.draw(st.integers(min_value=0, max_value=len(text)))
        byte = data.draw(st.sampled_from(b' "\\,:{}[]0123456789-.eEtfnu\x00\x1f\x7f\xc3\xa9\xff'))
        texts += [
            text[:pos] + bytes([byte]) + text[pos + 1 :],
            text[:pos] + bytes([byte]) + text[pos:],
            text[:pos] + text[pos + 1 :],
        ]
    got = native.canonical_leaf_hashes(texts, MAX_DEPTH)
    assert got is not None
    for t, h in zip(texts, got, strict=True):
        if h is not None:
            assert h == reference_leaf(t), t


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        (b'{"a":1}', True),
        (b'{"a":9007199254740991}', True),
        (b'{"a":9007199254740992}', False),  # beyond the safe range: the reference refuses it
        (b'{"a":1.0}', False),
        (b'{"a":-0}', False),
        (b'{"a":1,"a":1}', False),  # a key twice (keys must strictly increase)
        (b'{"b":1,"a":1}', False),
        (b'{"a":"\\ud800"}', False),  # a lone surrogate escape: the reference's
        ('{"a":"\U0001f600"}'.encode(), False),  # outside the BMP: key order is the reference's
        (b'{"a":"\\u001f\\n"}', True),
        (b'{"a":"\\u000a"}', False),  # \n has a short form
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, True),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), False),
        (b"[" * 200_000 + b"]" * 200_000, False),  # refused at the bound, without deep recursion
        (b'{"a":1}\n', False),
        (b"\xef\xbb\xbf{}", False),  # a byte order mark
        (b"", False),
    ],
)
def test_hostile_and_edge_texts(native: NativeEngine, text: bytes, accepted: bool) -> None:
    (got,) = native.canonical_leaf_hashes([text], MAX_DEPTH)
    assert (got is not None) is accepted
    if accepted:
        assert got == leaf_hash(text) == reference_leaf(text)


def _entry(index: int = 3, **over: Any) -> dict[str, Any]:
    e = {"index": index, "payload": {"x": [1, "é"]}, "prev": "ab" * 32, "type": "ballot.cast", "version": 1}
    return e | over


@pytest.mark.parametrize(
    "entry",
    [
        _entry(),
        _entry(version=2),  # canonical JSON, but not an entry: the reference words it
        _entry(prev="AB" * 32),
        _entry(type="Ballot"),
        _entry(payload=[1]),
        {"index": 1},
    ],
)
def test_line_facts_are_the_reference_s(native: NativeEngine, entry: dict[str, Any]) -> None:
    text = canonical_json(entry)
    (leaf,) = native.canonical_leaf_hashes([text], MAX_DEPTH)
    assert leaf == leaf_hash(text)
    vouched = canonical_line_facts(text, leaf)
    reference = line_facts(text + b"\n")
    assert vouched is None if isinstance(reference[0], str) else vouched == reference
    if vouched is not None:
        assert Entry.parse_canonical(text, leaf)[0] == Entry.parse(text)[0]


def test_the_reference_engine_leaves_canonical_texts_to_the_reference() -> None:
    assert PythonEngine().canonical_leaf_hashes([b"{}"], MAX_DEPTH) is None


def test_malformed_arguments_are_refused(native: NativeEngine) -> None:
    with pytest.raises(TypeError):
        native.canonical_leaf_hashes(["{}"], MAX_DEPTH)  # type: ignore[list-item]
    with pytest.raises(OverflowError):
        native.canonical_leaf_hashes([b"{}"], -1)


@given(st.binary(max_size=64))
def test_arbitrary_bytes(native: NativeEngine, text: bytes) -> None:
    assume(text)
    (got,) = native.canonical_leaf_hashes([text], MAX_DEPTH)
    assert got is None or got == reference_leaf(text)

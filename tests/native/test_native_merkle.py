"""RFC 9162 inclusion proofs (the roll proofs of V12) through both engines.

The native engine's ``verify_inclusions`` (``native/src/merkle.rs``) must accept exactly the proofs the
reference ``ledger.merkle.verify_inclusion`` accepts: Hypothesis trees of random sizes with sound proofs and
tampered ones (a flipped bit in any hash, another leaf, another index, another size, a hash dropped or
added, another root), in one batch. And the verifier reports the same V12 failures with either engine.
Skipped without the extension, except under ``TVOTE_REQUIRE_ALL=1`` (CI)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto._native import NativeEngine, PythonEngine
from ledger import InvalidEncoding, ProofError
from ledger.merkle import inclusion_proof, inclusion_proof_size, leaf_hash, root, verify_inclusion


def _reference(item: tuple[bytes, int, bytes], size: int, want: bytes) -> bool:
    data, index, raw = item
    try:
        verify_inclusion(
            leaf_hash(data), index, size, [raw[j : j + 32] for j in range(0, len(raw), 32)], want
        )
    except (ProofError, InvalidEncoding):
        return False
    return True


def _tamper(
    kind: int, data: list[bytes], m: int, path: list[bytes], size: int, salt: int
) -> tuple[bytes, int, bytes]:
    """One proof of leaf ``m``, sound (kind 0) or changed one way."""
    p = list(path)
    leaf, index = data[m], m
    if kind == 1 and p:  # a flipped bit in one hash
        j = salt % len(p)
        p[j] = bytes([p[j][0] ^ (1 << (salt % 8))]) + p[j][1:]
    elif kind == 2:  # another leaf's data
        leaf = data[(m + 1 + salt) % len(data)]
    elif kind == 3:  # another index (maybe out of range)
        index = (m + 1 + salt) % (size + 2)
    elif kind == 4 and p:  # a hash dropped
        del p[salt % len(p)]
    elif kind == 5:  # a hash added
        p.insert(salt % (len(p) + 1), bytes(32))
    return leaf, index, b"".join(p)


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 70),
    picks=st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 5), st.integers(0, 255)), min_size=1, max_size=12
    ),
    claimed=st.integers(-1, 3),
)
def test_the_native_engine_accepts_exactly_the_proofs_the_reference_accepts(
    native: NativeEngine, size: int, picks: list[tuple[int, int, int]], claimed: int
) -> None:
    data = [bytes([i % 256, i // 256]) * 16 for i in range(size)]
    hashes = [leaf_hash(d) for d in data]
    want = root(hashes)
    items = []
    for m, kind, salt in picks:
        m %= size
        items.append(_tamper(kind, data, m, inclusion_proof(m, hashes), size, salt))
    # the proofs are checked against the true size, or a claimed other one (a left leaf's path may still pass)
    checked_size = size if claimed < 1 else size + claimed
    verdicts = native.verify_inclusions(want, checked_size, items)
    assert verdicts is not None
    assert [v is None for v in verdicts] == [_reference(it, checked_size, want) for it in items]
    # another root refuses every proof; one that reaches the roots' comparison says so
    other = native.verify_inclusions(bytes(32), checked_size, items)
    assert other is not None and all(v is not None for v in other)
    for it, v in zip(items, other, strict=True):
        if _shape_ok(it, checked_size):
            assert v == "computed root does not match"


def _shape_ok(item: tuple[bytes, int, bytes], size: int) -> bool:
    """Whether the reference gets as far as comparing roots (index in range, path of the tree's depth)."""
    _, index, raw = item
    return index < size and len(raw) // 32 == inclusion_proof_size(index, size)


def test_the_reference_engine_leaves_inclusion_proofs_to_the_reference() -> None:
    assert PythonEngine().verify_inclusions(bytes(32), 1, [(b"x", 0, b"")]) is None


def test_malformed_arguments_are_refused(native: NativeEngine) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        native.verify_inclusions(b"short", 1, [])
    with pytest.raises(ValueError, match="32-byte hashes"):
        native.verify_inclusions(bytes(32), 2, [(b"x", 0, b"\x00" * 31)])
    with pytest.raises((ValueError, TypeError)):
        native.verify_inclusions(bytes(32), 2, [(b"x", 0)])
    with pytest.raises(OverflowError):
        native.verify_inclusions(bytes(32), 2, [(b"x", -1, b"")])

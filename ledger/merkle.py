"""RFC 9162 Merkle trees (SHA-256, leaf prefix 0x00, node prefix 0x01): hashes, proofs, verification.

Definitions (RFC 9162 §2.1)::

    MTH({})      = SHA-256()                                  (the empty tree)
    MTH({d0})    = SHA-256(0x00 || d0)                        (leaf_hash)
    MTH(D[n])    = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  k = largest power of 2 < n

The list-based functions (``root``, ``inclusion_proof``, ``consistency_proof``) take the *leaf hashes*;
the storage layer uses the same shape helpers (``subtree_nodes``, ``inclusion_ranges``,
``consistency_ranges``) with stored complete-subtree hashes, so a proof reads O(log n) rows.

Verification raises :class:`ledger.ProofError` (check failed) or :class:`ledger.InvalidEncoding`
(a hash that is not 32 bytes). Every hash given to a verifier is checked to be exactly 32 bytes.

Consistency from size 0 (tvote's rule): the empty tree is a prefix of every tree, so
``verify_consistency(0, n, old_root, new_root, proof)`` accepts iff ``old_root`` is the empty-tree root
``SHA-256("")``, ``new_root`` is 32 bytes and ``proof`` is empty. ``consistency_proof(0, leaves)`` is
``[]``. Equal sizes require equal roots and an empty proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Final

from ._errors import InvalidEncoding, ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_PROOF_LENGTH",
    "CompactRange",
    "consistency_proof",
    "consistency_ranges",
    "fold",
    "inclusion_proof",
    "inclusion_proof_size",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "root",
    "subtree_nodes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final[int] = 32
EMPTY_ROOT: Final[bytes] = hashlib.sha256(b"").digest()
#: A tree of at most 2**63 leaves has proofs of at most 2*63 hashes; longer proofs are refused unread.
MAX_PROOF_LENGTH: Final[int] = 128
_MAX_SIZE: Final[int] = 2**63 - 1


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _check_hash(h: object, what: str) -> bytes:
    if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
        n = len(h) if isinstance(h, bytes | bytearray) else type(h).__name__
        raise InvalidEncoding(f"{what} must be {HASH_SIZE} bytes, got {n}")
    return bytes(h)


def _check_size(n: object, what: str) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= _MAX_SIZE:
        raise InvalidEncoding(f"{what} must be an integer in [0, 2^63), got {n!r}")
    return n


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- shape of trees and proofs: ranges of leaves and complete subtrees ------------------------------


def subtree_nodes(begin: int, end: int) -> list[tuple[int, int]]:
    """The complete subtrees ``(level, index)`` whose right fold is MTH(D[begin:end]).

    ``begin`` must be a multiple of the smallest power of two >= ``end - begin`` (true of every range
    that appears in RFC 9162 proofs and of every prefix ``[0, n)``). Left to right.
    """
    out: list[tuple[int, int]] = []
    while end - begin > 0:
        n = end - begin
        if n & (n - 1) == 0:  # a power of two: one complete subtree
            level = n.bit_length() - 1
            out.append((level, begin >> level))
            break
        k = _largest_power_of_two_below(n)
        level = k.bit_length() - 1
        out.append((level, begin >> level))
        begin += k
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """Right fold of complete-subtree hashes (left to right) into one range hash."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


class CompactRange:
    """A growing tree kept as its right border of complete subtrees: O(log n) hashes, not the leaves.

    ``append(leaf_hash)`` adds one leaf and returns the interior nodes it completed, as
    ``(level, index, hash)`` with the leaf itself first (level 0); ``root()`` is the RFC 9162 root of the
    tree so far. Used wherever a root is needed while streaming: the ledger's sequencer, the record check,
    the verifier's counted set.
    """

    __slots__ = ("_border", "_size")

    def __init__(self, size: int = 0, border: Sequence[tuple[int, bytes]] = ()) -> None:
        """Resume from ``size`` leaves and their border ``[(level, hash), ...]`` (left to right)."""
        self._size = _check_size(size, "size")
        self._border = [(int(lv), _check_hash(h, "border hash")) for lv, h in border]
        if sum(1 << lv for lv, _ in self._border) != self._size:
            raise InvalidEncoding("compact range border does not cover the given size")

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        index = self._size
        done = [(0, index, leaf)]
        level, acc = 0, leaf
        while self._border and self._border[-1][0] == level:
            acc = node_hash(self._border.pop()[1], acc)
            level += 1
            done.append((level, index >> level, acc))
        self._border.append((level, acc))
        self._size += 1
        return done

    def root(self) -> bytes:
        return fold([h for _, h in self._border])

    def copy(self) -> CompactRange:
        c = CompactRange.__new__(CompactRange)
        c._size, c._border = self._size, list(self._border)
        return c


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[begin, end)`` whose hashes form PATH(index, D[size]), in proof order."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} not in a tree of size {size}")
    out: list[tuple[int, int]] = []
    begin, end = 0, size
    while end - begin > 1:
        k = _largest_power_of_two_below(end - begin)
        if index < begin + k:
            out.append((begin + k, end))
            end = begin + k
        else:
            out.append((begin, begin + k))
            begin = begin + k
    out.reverse()
    return out


def inclusion_proof_size(index: int, size: int) -> int:
    """``len(inclusion_ranges(index, size))`` without building the ranges: the hashes below the node where
    the paths of ``index`` and of the last leaf part, plus one for each complete subtree to the left above
    it (the decomposition of Trillian's ``merkle/proof``)."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} not in a tree of size {size}")
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1)."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    out: list[tuple[int, int]] = []
    begin, end, m, whole = 0, new_size, old_size, True
    while True:
        n = end - begin
        if m == n:
            if not whole:
                out.append((begin, end))
            break
        k = _largest_power_of_two_below(n)
        if m <= k:
            out.append((begin + k, end))
            end = begin + k
        else:
            out.append((begin, begin + k))
            begin, m, whole = begin + k, m - k, False
    out.reverse()
    return out


# --- list-based API -------------------------------------------------------------------------------


def _subtree_lookup(leaf_hashes: Sequence[bytes]) -> Callable[[int, int], bytes]:
    def lookup(level: int, index: int) -> bytes:
        layer = list(leaf_hashes[index << level : (index + 1) << level])
        while len(layer) > 1:
            layer = [node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
        return layer[0]

    return lookup


def _range_hash(begin: int, end: int, lookup: Callable[[int, int], bytes]) -> bytes:
    return fold([lookup(level, i) for level, i in subtree_nodes(begin, end)])


def _leaves(leaf_hashes: Sequence[bytes]) -> list[bytes]:
    return [_check_hash(h, "leaf hash") for h in leaf_hashes]


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over the given leaf hashes (SHA-256 of the empty string for no leaves)."""
    stack: list[tuple[int, bytes]] = []  # (level, hash) of the right border, like a compact range
    for h in _leaves(leaf_hashes):
        level, acc = 0, h
        while stack and stack[-1][0] == level:
            acc = node_hash(stack.pop()[1], acc)
            level += 1
        stack.append((level, acc))
    return fold([h for _, h in stack])


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) for the tree of the given leaf hashes (RFC 9162 §2.1.3.1)."""
    leaves = _leaves(leaf_hashes)
    if not isinstance(index, int) or not 0 <= index < len(leaves):
        raise ValueError(f"index {index!r} not in a tree of size {len(leaves)}")
    lookup = _subtree_lookup(leaves)
    return [_range_hash(b, e, lookup) for b, e in inclusion_ranges(index, len(leaves))]


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, D[n]) for the tree of the given leaf hashes (RFC 9162 §2.1.4.1)."""
    leaves = _leaves(leaf_hashes)
    if not isinstance(old_size, int) or not 0 <= old_size <= len(leaves):
        raise ValueError(f"old size {old_size!r} not in [0, {len(leaves)}]")
    lookup = _subtree_lookup(leaves)
    return [_range_hash(b, e, lookup) for b, e in consistency_ranges(old_size, len(leaves))]


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ------------------------------------------------


def _check_proof(proof: Sequence[bytes]) -> list[bytes]:
    if isinstance(proof, bytes | str) or len(proof) > MAX_PROOF_LENGTH:
        raise InvalidEncoding("proof must be a list of at most 128 hashes")
    if set(map(type, proof)) <= {bytes} and set(map(len, proof)) <= {HASH_SIZE}:  # the common case, in C
        return list(proof)
    return [_check_hash(p, "proof hash") for p in proof]


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise unless ``proof`` shows ``leaf_hash`` at ``index`` in the tree of ``tree_size`` with ``root``."""
    leaf = _check_hash(leaf_hash, "leaf hash")
    want = _check_hash(root, "root")
    index = _check_size(index, "index")
    tree_size = _check_size(tree_size, "tree size")
    path = _check_proof(proof)
    if index >= tree_size:
        raise ProofError("inclusion", f"index {index} is not below tree size {tree_size}")
    fn, sn, r = index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofError("inclusion", "proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion", "proof is shorter than the tree is deep")
    if r != want:
        raise ProofError("inclusion", "computed root does not match")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise unless ``proof`` shows the tree (old_size, old_root) is a prefix of (new_size, new_root)."""
    old_size = _check_size(old_size, "old size")
    new_size = _check_size(new_size, "new size")
    first = _check_hash(old_root, "old root")
    second = _check_hash(new_root, "new root")
    path = _check_proof(proof)
    if old_size > new_size:
        raise ProofError("consistency", f"old size {old_size} exceeds new size {new_size}")
    if old_size == 0:
        if first != EMPTY_ROOT:
            raise ProofError("consistency", "the root of the empty tree is SHA-256 of the empty string")
        if path:
            raise ProofError("consistency", "a proof from the empty tree must be empty")
        if new_size == 0 and second != EMPTY_ROOT:
            raise ProofError("consistency", "the root of the empty tree is SHA-256 of the empty string")
        return
    if old_size == new_size:
        if path:
            raise ProofError("consistency", "a proof between equal sizes must be empty")
        if first != second:
            raise ProofError("consistency", "equal sizes with different roots")
        return
    if not path:
        raise ProofError("consistency", "empty proof between different sizes")
    if old_size & (old_size - 1) == 0:
        path = [first, *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency", "proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency", "proof is shorter than the tree is deep")
    if fr != first:
        raise ProofError("consistency", "old root does not match")
    if sr != second:
        raise ProofError("consistency", "new root does not match")

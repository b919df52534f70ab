"""Type stubs of the extension module ``tvote_native`` (native/src/python.rs). crypto/_native.py wraps it."""

__version__: str
PROTOCOL_VERSION: str

#: ``None`` (valid) or ``(check, subject, cause, message)``; a decoding failure has check ``"invalid-encoding"``
Verdict = tuple[str, str | None, str | None, str] | None

class Election:
    def __init__(
        self, base_hash: bytes, public_key: bytes, contests: list[tuple[str, list[str], int, int]]
    ) -> None: ...

def verify_ballots(
    election: Election, ballots: list[object], sum_mask: list[bool] | None = None
) -> tuple[list[Verdict], list[tuple[bytes, bytes]] | None, list[bytes | None]]: ...
def verify_ballot(election: Election, ballot: object) -> Verdict: ...

# the tally (§13) of ballots already verified, onto ``start``: ``(sums, None)``, or ``(None, (index,
# reason))`` for the first ballot that does not decode or is of another election or shape; no proof checked
def sum_ballots(
    election: Election, ballots: list[object], start: list[tuple[bytes, bytes]] | None = None
) -> tuple[list[tuple[bytes, bytes]] | None, tuple[int, str] | None]: ...
def equation_counts(election: Election, ballots: list[object]) -> list[int | None]: ...
def combined_point(election: Election, ballots: list[object], weights: list[bytes]) -> bytes: ...
def msm_seconds_per_point(n: int, short: bool = False, reps: int = 3) -> float: ...
def decode_seconds_per_point(n: int, reps: int = 3) -> float: ...

# the trustees' proofs (§T2) in a batch: statements ``("schnorr", X, R, v, context)`` or
# ``("chaum-pedersen", X, A, Y, R1, R2, v, context)``; per statement None or the failed check
def verify_proofs(items: list[tuple[object, ...]]) -> list[str | None]: ...
def combined_proofs_point(items: list[tuple[object, ...]], weights: list[bytes]) -> bytes: ...

# RFC 9162 inclusion proofs under one tree: items ``(leaf data, index, path hashes concatenated)``; per item
# None (it verifies) or the reason ledger.merkle.verify_inclusion gives
def verify_inclusions(root: bytes, size: int, items: list[tuple[bytes, int, bytes]]) -> list[str | None]: ...

# per text the leaf hash SHA-256(0x00 || text) if it is certainly a canonical ledger entry text (RFC 8785 of
# the ledger's values, nesting at most max_depth levels), else None (ledger.record decides)
def canonical_leaf_hashes(texts: list[bytes], max_depth: int) -> list[bytes | None]: ...

# the verifier's V23 text screen: per text the distinct literals to look at (empty, not lowercase hex, or
# twelve digits), or None for a text whose payload is walked (a backslash, an odd number of quotes, twelve
# digits in a row outside the literals); the reference is verifier._privacy._screen
def screen_literals(texts: list[bytes]) -> list[list[bytes] | None]: ...

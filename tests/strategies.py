"""Shared Hypothesis strategies: the crypto tests' (scalars, points, ids, contests, choices) and the counting
rule's (:data:`cast_sequences`)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from crypto._ballot import ContestSpec
from crypto._group import IDENTITY, G, L, Scalar

__all__ = [
    "ballot_nonces",
    "base_hashes",
    "cast_sequences",
    "choices_for",
    "contest_specs",
    "identifiers",
    "nonzero_scalars",
    "overvotes_for",
    "points",
    "points_or_identity",
    "scalars",
    "transcript_items",
]

scalars = st.integers(min_value=0, max_value=L - 1).map(Scalar)
nonzero_scalars = st.integers(min_value=1, max_value=L - 1).map(Scalar)
#: Random subgroup elements other than the identity (``s·G`` for a random non-zero ``s``).
points = nonzero_scalars.map(lambda s: s * G)
points_or_identity = st.one_of(st.just(IDENTITY), points)

base_hashes = st.binary(min_size=32, max_size=32)
ballot_nonces = st.binary(min_size=32, max_size=32)
identifiers = st.from_regex(r"[A-Za-z0-9_.-]{1,16}", fullmatch=True)

transcript_items = st.one_of(
    scalars,
    points,
    st.binary(max_size=40),
    st.text(max_size=20),
    st.integers(min_value=0, max_value=2**64 - 1),
)


@st.composite
def contest_specs(draw: st.DrawFn, *, max_selections: int = 6, contest_id: str | None = None) -> ContestSpec:
    """A valid :class:`crypto._ballot.ContestSpec` with 1..``max_selections`` selections."""
    cid = contest_id if contest_id is not None else draw(identifiers)
    sel = draw(st.lists(identifiers, min_size=1, max_size=max_selections, unique=True))
    hi = draw(st.integers(min_value=0, max_value=len(sel)))
    lo = draw(st.integers(min_value=0, max_value=hi))
    return ContestSpec(cid, tuple(sel), lo, hi)


def choices_for(spec: ContestSpec) -> st.SearchStrategy[list[str]]:
    """A valid choice list for ``spec`` (between min and max distinct selections, any order)."""
    return st.integers(min_value=spec.min_selections, max_value=spec.max_selections).flatmap(
        lambda k: st.permutations(spec.selection_ids).map(lambda p: list(p[:k]))
    )


def overvotes_for(spec: ContestSpec) -> st.SearchStrategy[list[str]]:
    """A choice list with more than ``max_selections`` distinct selections (needs max < n)."""
    n = len(spec.selection_ids)
    return st.integers(min_value=spec.max_selections + 1, max_value=n).flatmap(
        lambda k: st.permutations(spec.selection_ids).map(lambda p: list(p[:k]))
    )


#: ``(voter, channel)`` of each cast ballot in ledger order: few voters, so re-votes, kiosk ballots overriding
#: internet ones and second kiosk ballots abound (the counting rule's tests)
cast_sequences = st.lists(
    st.tuples(st.integers(0, 6), st.sampled_from(["internet", "internet", "kiosk"])), max_size=40
)


#: V23 (record.privacy): strings and JSON values that a privacy screen must or must not flag
privacy_texts = st.sampled_from(
    [
        "ab" * 32,
        "123456789012",
        "a",
        "name",
        "names",
        "birth_date",
        "tracking_code",
        "203.0.113.9",
        "fe80::1",
        "〒305-8577",
        "平成元年3月2日",
        "2027-04-25",
        "1-2-3",
        "ballot.cast",
        "oidc+face",
        "x\\y",
        'q"q',
        "\u202e",
        "Tsukuba",
        "",
        "0",
        "ip",
        "Remote-Addr",
        "12345678901",
        "\U0001f600",
    ]
) | st.text(max_size=12)
privacy_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53 - 1), 2**53 - 1)
    | st.sampled_from([123456789012, -123456789012, 10**11, 10**12, 999999999999])
    | privacy_texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(privacy_texts, inner, max_size=3),
    max_leaves=12,
)


@st.composite
def privacy_entries(draw: st.DrawFn) -> tuple[str, dict[str, Any], bytes]:
    """``(event type, payload, JSON text of the entry)``: the text as the record writes it (RFC 8785) or
    another JSON text of the same entry (ASCII escapes, whitespace)."""
    import json

    from ledger.record import canonical_json

    etype = draw(
        st.sampled_from(["ballot.cast", "ballot.spoiled", "election.manifest", "trustee.registered"])
    )
    payload = draw(st.dictionaries(privacy_texts, privacy_values, max_size=4))
    writer = draw(st.sampled_from(["rfc8785", "ascii", "spaced"]))
    entry = {"index": 1, "payload": payload, "type": etype}
    if writer == "rfc8785":
        return etype, payload, canonical_json(entry)
    text = json.dumps(entry, ensure_ascii=writer == "ascii", indent=1 if writer == "spaced" else None)
    return etype, payload, text.encode("utf-8", "surrogatepass")

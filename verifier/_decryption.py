"""Decryption and the declaration: V19 tally.partial-decryption, V20 tally.combination, V21 tally.result
and V22 result.pdf."""

from __future__ import annotations

from typing import Any

from crypto import CryptoError, PartialDecryption, Point, ThresholdError, verify_partial, verify_partials
from crypto.hazmat import lagrange_combine, small_multiple

from . import _ledger
from ._ceremony import proof_engine
from ._checks import fail
from ._errors import CheckFailed
from ._report import Report
from ._source import RecordSource
from ._state import Options, State, read_selection_map, strip_binding

__all__ = ["declaration", "decryption"]


def decryption(report: Report, st: State, opts: Options) -> None:
    info, jk, tally = st.info, st.joint_key, st.tally
    if info is None or jk is None or tally is None:
        return
    # V19 tally.partial-decryption: "Every partial decryption share carries a valid Chaum-Pedersen proof
    # against the trustee's public share; every excluded trustee's share indeed fails."
    valid: dict[int, dict[tuple[str, str], PartialDecryption]] = {}
    verdicts: dict[tuple[int, tuple[str, str]], ThresholdError | None] = {}
    engine = proof_engine(report)
    if engine is not None:  # every proof in one batch check (the reference words a refused one)
        batch = [
            (t, key, pd)
            for t, (_, parts) in sorted(st.partials.items())
            for key, pd in parts.items()
            if pd.trustee == t and key in tally
        ]
        found = verify_partials([(pd, tally[key]) for _, key, pd in batch], jk, engine=engine)
        verdicts = {(t, key): err for (t, key, _), err in zip(batch, found, strict=True)}
    for t, (ei, parts) in sorted(st.partials.items()):
        good = True
        for key, pd in parts.items():
            try:
                if pd.trustee != t:
                    fail("tally.partial-decryption", f"partial names trustee {pd.trustee}", entry=ei)
                if (t, key) not in verdicts:
                    verify_partial(pd, tally[key], jk)
                elif (err := verdicts[(t, key)]) is not None:
                    raise err
            except CryptoError as e:
                good = False
                if t not in st.excluded:
                    report.fail(
                        "tally.partial-decryption",
                        f"{key[0]}/{key[1]}: {e.operator_message}",
                        entry=ei,
                    )
            except CheckFailed as e:
                good = False
                report.add(e)
        if good:
            valid[t] = parts
            if t in st.excluded:
                report.fail(
                    "tally.partial-decryption",
                    f"trustee {t} was excluded but its partial decryption is valid",
                    entry=st.excluded[t],
                )
    for t, ei in st.excluded.items():
        if t not in jk.qualified:
            report.fail("tally.partial-decryption", f"excluded trustee {t} is not qualified", entry=ei)
    report.passed("tally.partial-decryption")
    res = st.result
    if res is None:
        return
    # V20 tally.combination: "The trustees used are at least the threshold, qualified and with valid shares;
    # their shares combine by Lagrange interpolation at 0 to the plaintext point of every selection."
    used = res.get("trustees_used")
    ri = st.result_entry
    if (
        not isinstance(used, list)
        or used != sorted(set(used))
        or len(used) < jk.threshold
        or not all(isinstance(j, int) and j in jk.qualified for j in used)
    ):
        report.fail(
            "tally.combination",
            f"trustees_used {used!r} is not a sorted set of >= {jk.threshold} qualified trustees",
            entry=ri,
        )
        return
    missing = [j for j in used if j not in valid]
    if missing:
        report.fail(
            "tally.combination",
            f"trustees {missing} were used but have no valid partial decryption",
            entry=ri,
        )
        return
    plain: dict[tuple[str, str], Point] = {
        key: ct.b - lagrange_combine({j: valid[j][key].decryption_share for j in used})
        for key, ct in tally.items()
    }
    report.passed("tally.combination")
    # V21 tally.result: "Every published count m satisfies m*G = the combined plaintext point, with
    # 0 <= m <= counted; the result names exactly the manifest's contests and selections."
    results = res.get("results")
    counted = report.summary.get("counted", 0)
    try:
        table = read_selection_map(results, info, lambda v: v, "tally.result", ri or 0)
    except CheckFailed as e:
        report.add(e)
        return
    out: dict[str, dict[str, int]] = {c.id: {} for c in info.contests}
    for (cid, sid), m in table.items():
        out[cid][sid] = m
        if not isinstance(m, int) or isinstance(m, bool) or not 0 <= m <= counted:
            report.fail("tally.result", f"{cid}/{sid}: count {m!r} outside 0..{counted}", entry=ri)
        elif small_multiple(m) != plain[(cid, sid)]:
            report.fail("tally.result", f"{cid}/{sid}: published {m} is not the decryption", entry=ri)
    report.results = out
    report.passed("tally.result")


def declaration(src: RecordSource, report: Report, st: State, opts: Options, view: Any) -> None:
    # V22 result.pdf
    if st.declaration is None:
        return
    result = None if st.result is None else strip_binding(st.result)
    size = st.declaration.get("checkpoint_size")
    if st.result_entry is not None and (not isinstance(size, int) or size <= st.result_entry):
        report.fail(
            "result.pdf",
            "the cited checkpoint does not cover the tally.result entry",
            entry=st.declaration_entry,
        )
    # the commission's PDF root as pinned: by the pins file (official mode), else by the manifest
    pinned_root = None
    if opts.pins is not None and opts.pins.commission_root_sha256 is not None:
        pinned_root = opts.pins.commission_root_sha256
    elif st.info is not None and st.info.pins is not None:
        pinned_root = str(st.info.pins["commission_root_sha256"])
    _ledger.check_declaration(
        src,
        report,
        st.declaration,
        st.declaration_entry,
        result,
        view,
        opts.pdf_path,
        opts.pdf_trust_roots,
        pinned_root=pinned_root,
        manifest=None if st.info is None else st.info.manifest,
        roll_size=st.roll_size,
    )

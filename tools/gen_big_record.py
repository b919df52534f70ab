"""Generate a large, valid election record for the verifier benchmark (``bench/bench_verifier.py``).

    .venv/bin/python tools/gen_big_record.py --out /tmp/big --ballots 100000 --ballot 1of5 --workers 2

Writes ``OUT/record`` (record.json, checkpoints.jsonl, entries.jsonl, result.pdf) and ``OUT/root.pem`` (the
test commission root for ``tvote-verify --trust-root``). The election is real: a 3-trustee (t = 2) key
ceremony, N internet ballots (every 50th voter re-votes once, so the counting rule has work to do), a
spoiled ballot, the homomorphic tally, a 2-of-3 threshold decryption, and a signed result PDF. Ballots are
encrypted in a process pool and entries streamed to disk, so memory stays small. Test keys only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import multiprocessing
import random
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import rfc8785

from ledger.events import BASE_HASH, ELECTION_ID, EventType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crypto import (  # noqa: E402
    Ciphertext,
    ContestSpec,
    ElectionContext,
    EncryptedBallot,
    JointKey,
    TrusteeKeyGen,
    discrete_log,
    encrypt_ballot,
    qualify,
    reveal,
    tagged_sha256,
)
from crypto.hazmat import IDENTITY, lagrange_combine  # noqa: E402
from ledger.merkle import (  # noqa: E402
    CompactRange,
    consistency_proof,
    fold,
    inclusion_ranges,
    leaf_hash,
    root,
    subtree_nodes,
)
from ledger.record import (  # noqa: E402
    RESULT_FILE,
    ZERO_HASH,
    Checkpoint,
    CheckpointRecord,
    Entry,
    LogSigner,
    RecordHeader,
    RecordWriter,
    SignedCheckpoint,
    WitnessPolicy,
    WitnessSigner,
    aggregate_cosignatures,
)


def _time(size: int) -> int:
    """Signed checkpoint time (unix seconds): a function of the size, so records are reproducible."""
    return 1_800_000_000 + size


def _t(ja: str, en: str) -> dict[str, str]:
    return {"ja": ja, "en": en}


def contests(kind: str) -> list[dict[str, Any]]:
    if kind == "1of5":
        return [
            {
                "id": "mayor",
                "kind": "one_of_n",
                "min": 0,
                "max": 1,
                "name": _t("市長", "Mayor"),
                "selections": [
                    {"id": f"cand-{k}", "name": _t(f"候補{k}", f"Candidate {k}")} for k in range(1, 6)
                ],
            }
        ]
    # the demo's three contest kinds: 1 of 4, yes/no, up to 3 of 8
    return [
        {
            "id": "mayor",
            "kind": "one_of_n",
            "min": 0,
            "max": 1,
            "name": _t("市長", "Mayor"),
            "selections": [
                {"id": f"cand-{k}", "name": _t(f"候補{k}", f"Candidate {k}")} for k in range(1, 5)
            ],
        },
        {
            "id": "cityhall",
            "kind": "yes_no",
            "min": 0,
            "max": 1,
            "name": _t("市庁舎移転", "City hall"),
            "selections": [{"id": "yes", "name": _t("賛成", "Yes")}, {"id": "no", "name": _t("反対", "No")}],
        },
        {
            "id": "projects",
            "kind": "up_to_k",
            "min": 0,
            "max": 3,
            "name": _t("市民提案事業", "Projects"),
            "selections": [{"id": f"p{k}", "name": _t(f"事業{k}", f"Project {k}")} for k in range(1, 9)],
        },
    ]


def roll_tree(aliases: list[bytes]) -> tuple[bytes, dict[tuple[int, int], bytes]]:
    """The roll tree over ``aliases`` (sorted ascending; one RFC 9162 leaf per alias, docs/events.md
    ``roll.commitment``): its root and every complete subtree's hash by ``(level, index)``, in one streaming
    pass, so that each roll proof below reads O(log n) of them."""
    cr = CompactRange()
    nodes: dict[tuple[int, int], bytes] = {}
    for a in aliases:
        for level, index, h in cr.append(leaf_hash(a)):
            nodes[(level, index)] = h
    return cr.root(), nodes


def roll_proof(index: int, size: int, nodes: Mapping[tuple[int, int], bytes]) -> dict[str, Any]:
    """The ``roll_proof`` of a ``ballot.cast``: PATH(index, D[size]), each hash folded from stored nodes."""
    path = [fold([nodes[k] for k in subtree_nodes(b, e)]) for b, e in inclusion_ranges(index, size)]
    return {"index": index, "path": [h.hex() for h in path]}


_CTX: ElectionContext | None = None


def _init(ctx: ElectionContext) -> None:
    global _CTX
    _CTX = ctx


def _choice(ctx: ElectionContext, r: random.Random) -> dict[str, list[str]]:
    out = {}
    for c in ctx.contests:
        k = r.randint(c.min_selections, c.max_selections)
        out[c.contest_id] = r.sample(list(c.selection_ids), k)
    return out


def _encrypt_chunk(args: tuple[int, int]) -> list[str]:
    start, n = args
    assert _CTX is not None
    r = random.Random(start)
    out = []
    for _ in range(n):
        b, _sec = encrypt_ballot(_CTX, _choice(_CTX, r), rng=r)
        out.append(rfc8785.dumps(b.to_dict()).decode())
    return out


def _ballots(ctx: ElectionContext, n: int, workers: int, chunk: int = 200) -> Iterator[EncryptedBallot]:
    import json

    jobs = [(i, min(chunk, n - i)) for i in range(0, n, chunk)]
    if workers <= 1:
        _init(ctx)
        for j in jobs:
            for s in _encrypt_chunk(j):
                yield EncryptedBallot.from_dict(json.loads(s))
        return
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_init, initargs=(ctx,)) as pool:
        for res in pool.imap(_encrypt_chunk, jobs):
            for s in res:
                yield EncryptedBallot.from_dict(json.loads(s))


def generate(out: Path, n: int, kind: str = "1of5", workers: int = 1, seed: int = 1) -> Path:
    rng = random.Random(seed)
    rec = out / "record"
    shutil.rmtree(rec, ignore_errors=True)  # regenerated whole: the record's one writer wants a new directory
    writer = RecordWriter(rec)
    log = LogSigner.generate("tvote.bench/log", seed=rng.randbytes(32))
    witnesses = [WitnessSigner.generate(f"witness-{k}", random=rng.randbytes) for k in (1, 2)]
    wkeys = [w.public for w in witnesses]
    manifest: dict[str, Any] = {
        "format": "tvote-manifest/1",
        "election_id": "bench-election",
        "name": _t("ベンチマーク", "Benchmark"),
        "voting_period": {"opens": "2027-04-18T00:00:00Z", "closes": "2027-04-25T11:00:00Z"},
        "contests": contests(kind),
        "trustees": {"n": 3, "threshold": 2},
        "witnesses": {
            "quorum": 2,
            "keys": [
                {"name": k.name, "bls_public_key": k.public_key.hex(), "pop": k.pop.hex()} for k in wkeys
            ],
        },
        "revote_rule": "last-internet-kiosk-overrides",
        "auth_methods": ["jpki", "oidc+face"],
    }
    bh = tagged_sha256("election-base-hash", rfc8785.dumps(manifest))

    def bind(p: dict[str, Any]) -> dict[str, Any]:
        return {ELECTION_ID: "bench-election", BASE_HASH: bh.hex(), **p}

    hashes: list[bytes] = []
    prev = ZERO_HASH

    def append(t: str, p: dict[str, Any]) -> None:
        nonlocal prev
        e = Entry.create(len(hashes), prev, t, p)
        writer.add_entry(e.canonical)
        hashes.append(e.hash)
        prev = e.hash

    append(EventType.MANIFEST, {"manifest": manifest, BASE_HASH: bh.hex()})
    gens = [TrusteeKeyGen.generate(i, threshold=2, trustees=3, base_hash=bh, rng=rng) for i in (1, 2, 3)]
    for g in gens:
        append(
            EventType.TRUSTEE_REGISTERED,
            bind(
                {
                    "trustee": g.trustee,
                    "name": f"Trustee {g.trustee}",
                    "x25519_public_key": g.commitments.x25519_public_key.hex(),
                    "commitments": g.commitments.to_dict(),
                }
            ),
        )
    comms = [g.commitments for g in gens]
    jk = JointKey.from_commitments(comms, qualify(comms, base_hash=bh, threshold=2, trustees=3), base_hash=bh)
    keys = [
        g.finalize({o.trustee: o.share_for(g.trustee) for o in gens if o.trustee != g.trustee}, comms)
        for g in gens
    ]
    jd = jk.to_dict()
    append(
        EventType.JOINT_KEY,
        bind({k: jd[k] for k in ("qualified", "joint_key", "public_shares", "threshold")}),
    )
    voters = n - n // 50
    # a real roll of exactly the voters (sorted aliases), so every ballot carries a valid roll_proof (V12);
    # the check is the verifier's
    roll_aliases = sorted(tagged_sha256("bench-alias", v) for v in range(voters))
    rank = {a: r for r, a in enumerate(roll_aliases)}
    roll_root, roll_nodes = roll_tree(roll_aliases)
    append(
        EventType.ROLL_COMMITMENT,
        bind({"size": voters, "root": roll_root.hex(), "alias_scheme": "hmac-sha256/1"}),
    )
    page = b"<!doctype html><title>booth</title>"
    assets: list[Any] = [{"path": "/", "sha256": hashlib.sha256(page).hexdigest(), "bytes": len(page)}]
    digest = tagged_sha256("booth-assets", rfc8785.dumps(assets)).hex()
    append(EventType.BOOTH_PUBLISHED, bind({"assets": assets, "digest": digest}))
    append(EventType.VOTING_OPENED, bind({"opened_at": "2027-04-18T00:00:00Z"}))
    specs = tuple(
        ContestSpec(c["id"], tuple(s["id"] for s in c["selections"]), c["min"], c["max"])
        for c in manifest["contests"]
    )
    ctx = ElectionContext(bh, jk.public_key, specs)
    keys_order = [(c.contest_id, s) for c in specs for s in c.selection_ids]
    totals = {k: Ciphertext(IDENTITY, IDENTITY) for k in keys_order}
    # the counted set as a Merkle compact range (docs/events.md row 13); a re-vote always supersedes the
    # ballot just before it, so the newest counted hash waits in ``pending`` until the next voter's ballot
    counted_tree = CompactRange()
    pending: str | None = None
    cast = superseded = n_counted = 0
    last_of: dict[int, tuple[int, EncryptedBallot]] = {}
    voter = 0
    t0 = time.monotonic()
    for k, b in enumerate(_ballots(ctx, n, workers)):
        revote = k % 50 == 49 and voter > 0
        v = voter - 1 if revote else voter
        if not revote:
            voter += 1
        seq = 2 if revote else 1
        bhash = b.ballot_hash().hex()
        append(
            EventType.BALLOT_CAST,
            bind(
                {
                    "ballot": b.to_dict(),
                    "ballot_hash": bhash,
                    "tracking_code": b.tracking_code(),
                    "voter_alias": tagged_sha256("bench-alias", v).hex(),
                    "roll_proof": roll_proof(rank[tagged_sha256("bench-alias", v)], voters, roll_nodes),
                    "channel": "internet",
                    "auth": {"method": "jpki", "evidence_hash": tagged_sha256("bench-evidence", k).hex()},
                    "seq": seq,
                }
            ),
        )
        cast += 1
        for c in b.contests:
            for s in c.selections:
                totals[(c.contest_id, s.selection_id)] = totals[(c.contest_id, s.selection_id)] + s.ciphertext
        if revote:
            _, old = last_of.pop(v)
            superseded += 1
            for c in old.contests:
                for s in c.selections:
                    t = totals[(c.contest_id, s.selection_id)]
                    totals[(c.contest_id, s.selection_id)] = Ciphertext(
                        t.a - s.ciphertext.a, t.b - s.ciphertext.b
                    )
        else:
            last_of.clear()
        last_of[v] = (k, b)
        if not revote:
            if pending is not None:
                counted_tree.append(leaf_hash(bytes.fromhex(pending)))
            n_counted += 1
        pending = bhash
        if k % 5000 == 4999:
            print(f"  {k + 1} ballots, {time.monotonic() - t0:.0f}s", file=sys.stderr)
    sb, sec = encrypt_ballot(ctx, _choice(ctx, rng), rng=rng)
    append(
        EventType.BALLOT_SPOILED,
        bind(
            {
                "ballot": sb.to_dict(),
                "ballot_hash": sb.ballot_hash().hex(),
                "tracking_code": sb.tracking_code(),
                "revealed": reveal(sb, sec).to_dict(),
            }
        ),
    )
    append(EventType.VOTING_CLOSED, bind({"closed_at": "2027-04-25T11:00:00Z"}))
    cts: dict[str, dict[str, Any]] = {c.contest_id: {} for c in specs}
    for (cid, sid), ct in totals.items():
        cts[cid][sid] = ct.to_dict()
    if pending is not None:
        counted_tree.append(leaf_hash(bytes.fromhex(pending)))
    assert counted_tree.size == n_counted
    croot = counted_tree.root().hex()
    append(EventType.TALLY_ENCRYPTED, bind({"counted_root": croot, "ciphertexts": cts}))
    used = [k for k in keys if k.trustee in (1, 3)]
    for tk in used:
        parts: dict[str, dict[str, Any]] = {c.contest_id: {} for c in specs}
        for (cid, sid), ct in totals.items():
            parts[cid][sid] = tk.partial_decrypt(ct, rng=rng).to_dict()
        append(EventType.TALLY_PARTIAL, bind({"trustee": tk.trustee, "partials": parts}))
    idx = [tk.trustee for tk in used]
    results: dict[str, dict[str, int]] = {c.contest_id: {} for c in specs}
    for (cid, sid), ct in totals.items():
        acc = lagrange_combine({tk.trustee: tk.secret_share * ct.a for tk in used})
        results[cid][sid] = discrete_log(ct.b - acc, n_counted)
    result = {
        "results": results,
        "trustees_used": idx,
        "cast": cast,
        "counted": n_counted,
        "superseded": superseded,
        "overridden": 0,
        "spoiled": 1,
    }
    append(EventType.TALLY_RESULT, bind(result))
    sizes = [len(hashes) // 2, len(hashes)]

    def note(size: int) -> str:
        return SignedCheckpoint.sign(Checkpoint(log.name, size, root(hashes[:size]), _time(size)), log).note

    try:
        from cryptography.hazmat.primitives import serialization

        from voting.result_pdf import CommissionSigner, build_result_pdf
        from voting.testing import CommissionTestCa

        ca = CommissionTestCa.generate(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        signer = CommissionSigner(ca.signer_certificate, ca.signer_key, (ca.root_certificate,))
        cp_note = note(len(hashes))
        cp_hash = hashlib.sha256(cp_note.encode()).hexdigest()
        pdf = build_result_pdf(
            manifest,
            result,
            checkpoint_note=cp_note,
            record_url="https://example.jp/bench",
            roll_size=voters,
            signer=signer,
        )
        writer.add_file(RESULT_FILE, pdf)
        (out / "root.pem").write_bytes(ca.root_certificate.public_bytes(serialization.Encoding.PEM))
        append(
            EventType.RESULT_DECLARATION,
            bind(
                {
                    "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
                    "checkpoint_size": len(hashes),
                    "checkpoint_hash": cp_hash,
                }
            ),
        )
        sizes.append(len(hashes))
    except ImportError:  # without the server extras the record simply stops at tally.result (--partial)
        pass
    cps = []
    for k, size in enumerate(sizes):
        r = root(hashes[:size])
        bundle = None
        if k == len(sizes) - 1:
            body = Checkpoint(log.name, size, r, _time(size)).body()
            bundle = aggregate_cosignatures({w.name: w.cosign(body) for w in witnesses})
        prev_size = sizes[k - 1] if k else None
        proof = tuple(consistency_proof(prev_size, hashes[:size])) if prev_size is not None else ()
        cps.append(CheckpointRecord(size, r, note(size), _time(size), prev_size, proof, bundle))
    header = RecordHeader(log.public, WitnessPolicy(tuple(wkeys), 2), len(hashes), len(cps))
    return writer.seal(header, cps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--ballots", type=int, default=1000)
    ap.add_argument("--ballot", choices=["1of5", "demo3"], default="1of5")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    t = time.monotonic()
    rec = generate(a.out, a.ballots, a.ballot, a.workers, a.seed)
    print(f"wrote {rec} ({a.ballots} ballots) in {time.monotonic() - t:.1f}s")


if __name__ == "__main__":
    main()

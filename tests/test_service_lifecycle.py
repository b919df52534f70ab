"""The election service end to end over HTTP: setup → key ceremony → voting → tally → result → PDF → export.

Runs on SQLite (default) and on a real PostgreSQL (the ``database_url`` fixture; skipped when absent).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile

from _service_util import (
    ADMIN,
    ADMIN_TOKEN,
    CLOSE_EARLY,
    OPEN_EARLY,
    cast_directly,
    create_election,
    error_code,
    ok,
    roll_aliases,
    running_app,
)
from cryptography import x509

from crypto._elgamal import Ciphertext
from crypto._threshold import PartialDecryption
from verifier._engine import Options, verify_record
from voting._trustee_client import run_decryption, run_key_ceremony

BLANK = {"mayor": [], "projects": [], "referendum": []}


def _lifecycle(tmp_path, database_url=None):
    rng = random.Random(4)
    with running_app(tmp_path, database_url) as (client, service):
        invitations = create_election(client)
        trustees = run_key_ceremony(client, invitations, admin_token=ADMIN_TOKEN)
        info = ok(client.get("/api/v1/election"))
        assert info["joint_key"] == service.joint_key().public_key.hex()
        assert info["roll_size"] == 5 and info["roll_committed"]
        # voting opens only with joint key + roll commitment (both present now)
        ok(client.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY))
        A, B, C, D = roll_aliases(service)[:4]  # the entries carry roll inclusion proofs: real voters
        cast = [
            # A votes twice on the internet: the last counts, the first is superseded
            (A, "internet", {"mayor": ["cand-1"], "projects": ["library"], "referendum": ["yes"]}, 1),
            (
                A,
                "internet",
                {"mayor": ["cand-2"], "projects": ["library", "cycling"], "referendum": ["no"]},
                2,
            ),
            # B votes online, then at a kiosk: the kiosk ballot overrides
            (B, "internet", {"mayor": ["cand-3"], "projects": [], "referendum": ["yes"]}, 1),
            (B, "kiosk", {"mayor": ["cand-2"], "projects": ["science"], "referendum": ["yes"]}, 2),
            (C, "internet", {"mayor": ["cand-2"], "projects": ["cycling", "childcare"], "referendum": []}, 1),
            (D, "internet", BLANK, 1),
        ]
        for alias, channel, choices, seq in cast:
            cast_directly(service, alias, channel, choices, seq, rng)
        ok(client.post("/api/v1/admin/close", headers=ADMIN, json=CLOSE_EARLY))
        tally = ok(client.post("/api/v1/admin/tally", headers=ADMIN))
        assert (tally["cast"], tally["counted"], tally["superseded"], tally["overridden"]) == (6, 4, 1, 1)

        # trustee 4 sends a corrupted partial: named and excluded; 1, 2, 3 are valid; 5 is absent
        t4 = trustees[4]
        t4.finalize(client)
        cts = ok(client.get("/api/v1/election/tally"))["ciphertexts"]
        good = {
            c: {s: t4.key.partial_decrypt(Ciphertext.from_dict(ct)) for s, ct in sels.items()}
            for c, sels in cts.items()
        }
        bad = {c: {s: p.to_dict() for s, p in sels.items()} for c, sels in good.items()}
        other = PartialDecryption.from_dict(bad["mayor"]["cand-1"])
        bad["mayor"]["cand-2"] = {**bad["mayor"]["cand-2"], "decryption_share": other.decryption_share.hex()}
        r = ok(
            client.post(
                "/api/v1/trustee/partials",
                json={"partials": bad},
                headers={"Authorization": f"Bearer {t4.token}"},
            )
        )
        assert r["accepted"] is False and "mayor/cand-2" in r["reason"]
        # too few valid partials yet
        assert error_code(client.post("/api/v1/admin/result", headers=ADMIN), 409) == "tally.too_few_partials"
        answers = run_decryption(client, [trustees[1], trustees[2], trustees[3]])
        assert all(a["accepted"] for a in answers.values())
        result = ok(client.post("/api/v1/admin/result", headers=ADMIN))
        assert result["trustees_used"] == [1, 2, 3]
        assert result["results"] == {
            "mayor": {"cand-1": 0, "cand-2": 3, "cand-3": 0},
            "projects": {"library": 1, "cycling": 2, "childcare": 1, "science": 1},
            "referendum": {"yes": 1, "no": 1},
        }
        assert (
            result["cast"],
            result["counted"],
            result["superseded"],
            result["overridden"],
            result["spoiled"],
        ) == (
            6,
            4,
            1,
            1,
            0,
        )
        assert ok(client.get("/api/v1/election/result"))["results"] == result["results"]

        decl = ok(client.post("/api/v1/admin/declaration", headers=ADMIN))
        pdf = client.get("/api/v1/election/result.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert hashlib.sha256(pdf.content).hexdigest() == decl["pdf_sha256"]

        # the ledger holds the lifecycle in order
        types = [e.type for e in service.ledger.entries(0, service.ledger.size)]
        assert types[0] == "election.manifest" and types[-1] == "result.declaration"
        assert types.count("trustee.registered") == 5 and types.count("trustee.shares") == 5
        assert types.count("tally.partial") == 4 and types.count("tally.excluded") == 1
        excluded = [
            e.payload for e in service.ledger.entries(0, service.ledger.size) if e.type == "tally.excluded"
        ]
        assert excluded[0]["trustee"] == 4

        archive = client.get("/api/v1/admin/export", headers=ADMIN)
        assert archive.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
            names = tar.getnames()
            entries = tar.extractfile(next(n for n in names if n.endswith("entries.jsonl")))
            lines = entries.read().splitlines()
        assert any(n.endswith("result.pdf") for n in names)
        assert len(lines) == service.ledger.size
        assert json.loads(lines[-1])["type"] == "result.declaration"
        # no private column leaks into the record
        blob = b"\n".join(lines).decode()
        assert service.election().roll_key_hex not in blob
        for t in trustees.values():
            assert t.token not in blob

        # the independent verifier accepts the exported record (PDF checked against the commission root)
        service.export(tmp_path / "record")
        roots = tuple(
            x509.load_pem_x509_certificates((tmp_path / "data" / "commission-chain.pem").read_bytes())
        )
        report = verify_record(tmp_path / "record", Options(pdf_trust_roots=roots))
        assert [(f.check, f.message) for f in report.failures] == []


def test_lifecycle(tmp_path, database_url):
    _lifecycle(tmp_path, database_url)

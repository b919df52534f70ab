"""The verifier's verdict (issue 16): "not checked" for a check that could not run for a missing input and
the NOT FULLY VERIFIED verdict with its own exit status; a trust-root file that is not a certificate; receipt
problems reported as receipt problems; the report in Japanese (``--lang ja``); and the closing statement of
what was verified and what a public verifier cannot check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner
from verifier_fixture import Election, build_election

from ledger.merkle import inclusion_proof, leaf_hash
from verifier import CHECKS
from verifier._lang import CHECK_TITLES_JA, TEXTS, check_title, text
from verifier._report import Report
from verifier.cli import (
    EXIT_INVALID,
    EXIT_NOT_FULLY_VERIFIED,
    EXIT_OK,
    EXIT_RECEIPT_MISMATCH,
    EXIT_UNREADABLE,
    app,
    exit_status,
)

pytestmark = pytest.mark.xdist_group("verifier")


@pytest.fixture(scope="module")
def election() -> Election:
    return build_election(seed=5)


@pytest.fixture(scope="module")
def valid(election: Election, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return election.write(tmp_path_factory.mktemp("valid-verdict") / "record")


def root_args(valid: Path) -> list[str]:
    return ["--trust-root", str(valid.parent / "record-root.pem")]


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def flat(output: str) -> str:
    """The output with rich's line wrapping undone (words joined by single spaces)."""
    return " ".join(output.split())


def receipt(rec: Path, index: int) -> dict[str, Any]:
    lines = (rec / "entries.jsonl").read_bytes().split(b"\n")[:-1]
    cp = json.loads((rec / "checkpoints.jsonl").read_bytes().split(b"\n")[-2])
    hashes = [leaf_hash(x) for x in lines]
    p = json.loads(lines[index])["payload"]
    return {
        "kind": "cast",
        "election_id": p["election_id"],
        "ballot_hash": p["ballot_hash"],
        "tracking_code": p["tracking_code"],
        "leaf_index": index,
        "entry_hash": hashes[index].hex(),
        "checkpoint": cp["note"],
        "inclusion_proof": [h.hex() for h in inclusion_proof(index, hashes[: cp["size"]])],
    }


def cast_index(election: Election, k: int = 3) -> int:
    return [j for j, (t, _) in enumerate(election.events) if t == "ballot.cast"][k]


# ---------------------------------------------------------------------- (1) not checked, NOT FULLY VERIFIED


def test_without_trust_root_the_verdict_is_not_fully_verified_exit_4(valid: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    res = run(str(valid), "--json", str(out))
    assert res.exit_code == EXIT_NOT_FULLY_VERIFIED, res.output
    said = flat(res.output)
    assert "NOT FULLY VERIFIED: no check failed, but V22 could not run" in said
    assert "NOT CHECKED V22 Result declaration PDF: no commission root certificate was given" in said
    assert "--trust-root FILE" in said and "INVALID" not in said
    rep = json.loads(out.read_text())
    # backward compatible: the same format and keys, `valid` false as before (fail closed); new: `verdict`,
    # `receipt`, each check's `reason`, and the status value "not-checked"
    assert rep["format"] == "tvote-verify-report/1"
    assert rep["valid"] is False and rep["verdict"] == "not-fully-verified" and rep["receipt"] is None
    v22 = rep["checks"][21]
    assert (v22["step"], v22["status"], v22["failures"]) == (22, "not-checked", 0)
    assert "--trust-root" in v22["reason"]
    assert all(c["reason"] is None for c in rep["checks"] if c["step"] != 22)
    assert rep["failures"] == []


def test_with_the_trust_root_the_same_record_is_valid_exit_0(valid: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    res = run(str(valid), "--json", str(out), *root_args(valid))
    assert res.exit_code == EXIT_OK, res.output
    rep = json.loads(out.read_text())
    assert rep["valid"] is True and rep["verdict"] == "valid"
    assert "NOT CHECKED" not in res.output


def test_a_failed_check_outranks_a_check_not_run(valid: Path, tmp_path: Path) -> None:
    rec = tmp_path / "record"
    shutil.copytree(valid, rec)
    lines = (rec / "entries.jsonl").read_bytes().split(b"\n")
    lines[12], lines[13] = lines[13], lines[12]
    (rec / "entries.jsonl").write_bytes(b"\n".join(lines))
    res = run(str(rec))  # no --trust-root either
    assert res.exit_code == EXIT_INVALID, res.output
    assert "INVALID: checks V2" in flat(res.output) and "NOT FULLY VERIFIED" not in res.output


def test_a_missing_result_pdf_is_not_checked(valid: Path, tmp_path: Path) -> None:
    rec = tmp_path / "record"
    shutil.copytree(valid, rec)
    (rec / "result.pdf").unlink()
    res = run(str(rec), *root_args(valid))
    assert res.exit_code == EXIT_NOT_FULLY_VERIFIED, res.output
    assert "no result.pdf in or beside the record (give it with --pdf FILE)" in flat(res.output)
    # given with --pdf it is checked again
    res = run(str(rec), "--pdf", str(valid / "result.pdf"), *root_args(valid))
    assert res.exit_code == EXIT_OK, res.output


def test_exit_status_precedence() -> None:
    def report(**statuses: str) -> Report:
        r = Report(record="x")
        for step, st in statuses.items():
            r.statuses[int(step[1:])] = st
        return r

    assert exit_status(report()) == EXIT_OK
    assert exit_status(report(V22="not-checked")) == EXIT_NOT_FULLY_VERIFIED
    assert exit_status(report(V25="fail")) == EXIT_RECEIPT_MISMATCH
    assert exit_status(report(V22="not-checked", V25="fail")) == EXIT_RECEIPT_MISMATCH
    assert exit_status(report(V22="not-checked", V25="fail", V13="fail")) == EXIT_INVALID
    assert exit_status(report(V25="pass")) == EXIT_OK


def test_help_lists_every_exit_status() -> None:
    said = flat(run("--help").output)
    for line in (
        "0 VALID:",
        "1 INVALID:",
        "2 nothing verified:",
        "3 the verifier itself failed",
        "4 NOT FULLY VERIFIED:",
        "5 RECEIPT DOES NOT MATCH:",
    ):
        assert line in said, line
    doc = (Path(__file__).resolve().parents[2] / "docs" / "verifier.md").read_text(encoding="utf-8")
    for status in ("**0**", "**1**", "**2**", "**3**", "**4**", "**5**"):
        assert status in doc


# ------------------------------------------------------------------------ (2) a trust root that is not one


@pytest.mark.parametrize("kind", ["text", "key", "empty", "missing", "der-junk"])
def test_a_trust_root_that_is_not_a_certificate_says_what_it_should_be(
    valid: Path, tmp_path: Path, kind: str
) -> None:
    bad = tmp_path / "root.pem"
    if kind == "text":
        bad.write_text("the commission's root, see the gazette\n")
    elif kind == "key":
        key = ec.generate_private_key(ec.SECP256R1())
        bad.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "der-junk":
        bad.write_bytes(b"\x30\x03\x02\x01\x05")  # DER, but an INTEGER in a SEQUENCE, not a certificate
    res = run(str(valid), "--trust-root", str(bad))
    assert res.exit_code == EXIT_UNREADABLE, res.output
    said = flat(res.output)
    assert said.startswith("cannot use the trust root:"), said
    assert "asn1" not in said.lower() and "ParseError" not in said
    if kind == "missing":
        assert "cannot read the file" in said
    else:
        assert "the election commission's root certificate: an X.509 certificate, PEM" in said, said
    if kind == "key":
        assert "holds a PEM PRIVATE KEY, not a certificate" in said


# ---------------------------------------------------------------------------- (3) receipt problems


def test_a_receipt_that_does_not_match_is_a_receipt_verdict_not_invalid(
    election: Election, valid: Path, tmp_path: Path
) -> None:
    rc = receipt(valid, cast_index(election))
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(rc))
    out = tmp_path / "r.json"
    res = run(str(valid), "--receipt", str(path), "--json", str(out), *root_args(valid))
    assert res.exit_code == EXIT_OK, res.output
    assert "RECEIPT MATCHES" in res.output
    assert json.loads(out.read_text())["receipt"] == "matches"
    path.write_text(json.dumps(rc | {"tracking_code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"}))
    res = run(str(valid), "--receipt", str(path), "--json", str(out), *root_args(valid))
    assert res.exit_code == EXIT_RECEIPT_MISMATCH, res.output
    said = flat(res.output)
    assert "VALID (not official" in said and "INVALID" not in said
    assert "RECEIPT DOES NOT MATCH: the receipt does not match this record" in said
    rep = json.loads(out.read_text())
    assert rep["verdict"] == "valid" and rep["receipt"] == "does-not-match"
    assert rep["valid"] is False  # as before: `valid` is true exactly when the exit status is 0
    assert [f["step"] for f in rep["failures"]] == [25]
    # without a trust root too: the receipt's mismatch is the more definite finding (exit 5 before 4)
    res = run(str(valid), "--receipt", str(path))
    assert res.exit_code == EXIT_RECEIPT_MISMATCH, res.output
    assert "NOT FULLY VERIFIED" in res.output


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "the file cannot be opened"),
        (b"\xff\xfe not json", "the file is not a receipt (JSON)"),
        (b'{"tracking_code": "x"}', "the file is not a receipt: a receipt is a JSON object with"),
        (b"[1, 2]", "the file is not a receipt: a receipt is a JSON object with"),
    ],
)
def test_a_receipt_that_cannot_be_read_says_so(
    election: Election, valid: Path, tmp_path: Path, content: bytes | None, said: str
) -> None:
    path = tmp_path / "receipt.json"
    if content is not None:
        path.write_bytes(content)
    res = run(str(valid), "--receipt", str(path), *root_args(valid))
    assert res.exit_code == EXIT_UNREADABLE, res.output
    out = flat(res.output)
    assert out.startswith("cannot read the receipt:") and said in out, out
    assert "cannot read the record" not in out


def test_a_receipt_with_a_bad_leaf_index_cannot_be_read(
    election: Election, valid: Path, tmp_path: Path
) -> None:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt(valid, cast_index(election)) | {"leaf_index": -1}))
    res = run(str(valid), "--receipt", str(path), *root_args(valid))
    assert res.exit_code == EXIT_UNREADABLE
    assert "leaf_index is not a non-negative integer" in flat(res.output)


# ---------------------------------------------------------------------------------- (4) --lang ja


def test_every_check_has_a_japanese_title_and_every_text_both_languages() -> None:
    assert set(CHECK_TITLES_JA) == {c.id for c in CHECKS}
    for c in CHECKS:
        ja = check_title(c, "ja")
        assert ja.strip() and ja != c.title and any(ord(ch) > 0x3000 for ch in ja), c.id
        assert check_title(c) == c.title
    for key, (en, ja) in TEXTS.items():
        assert en.strip() and ja.strip(), key
        assert not any(ord(ch) > 0x3000 for ch in en), key  # the English column is English
        assert any(ord(ch) > 0x3000 for ch in ja), key  # the Japanese column is Japanese
        # both take the same fields (a check's id in English is its Japanese title in Japanese)
        assert {"title" if f == "check" else f for f in _fields(en)} == set(_fields(ja)), key


def _fields(template: str) -> list[str]:
    import string

    return [f.split(":")[0] for _, f, _, _ in string.Formatter().parse(template) if f]


def test_lang_ja_prints_the_report_in_japanese(valid: Path, tmp_path: Path) -> None:
    en_json, ja_json = tmp_path / "en.json", tmp_path / "ja.json"
    res = run(str(valid), "--lang", "ja", "--json", str(ja_json), *root_args(valid))
    assert res.exit_code == EXIT_OK, res.output
    said = flat(res.output)
    assert "エントリ、" in said and " 秒）" in said
    assert "有効 （非公式: --pins なし）" in said and "VALID" not in said
    for c in CHECKS:
        if c.step not in (24, 25, 27):  # the optional checks are listed only when given
            assert CHECK_TITLES_JA[c.id] in said, c.id
    assert "検証項目" in said and "投じられた票 7" in said and "合格" in said
    assert "Hash chain" not in said and "not official" not in said
    # the JSON report is the same in both languages (English texts, stable ids)
    res_en = run(str(valid), "--json", str(en_json), *root_args(valid))
    assert res_en.exit_code == EXIT_OK
    en, ja = json.loads(en_json.read_text()), json.loads(ja_json.read_text())
    en.pop("elapsed_seconds"), ja.pop("elapsed_seconds")
    assert en == ja and en["checks"][1]["title"] == "Hash chain"


def test_lang_ja_not_fully_verified_failure_and_receipt(
    election: Election, valid: Path, tmp_path: Path
) -> None:
    res = run(str(valid), "--lang", "ja")
    assert res.exit_code == EXIT_NOT_FULLY_VERIFIED
    said = flat(res.output)
    assert "検証未完了: 不合格の項目はありませんが、V22 は入力が足りず検証できませんでした" in said
    assert "未検証 V22「結果宣言書（PDF）」: 選挙管理委員会のルート証明書が与えられていないため" in said
    assert "V28 管理者（トラスティ）の登録: 該当なし（選挙定義が" in said
    # a failure: the frame in Japanese, the check's own message as it is
    rec = tmp_path / "record"
    shutil.copytree(valid, rec)
    lines = (rec / "entries.jsonl").read_bytes().split(b"\n")
    lines[12], lines[13] = lines[13], lines[12]
    (rec / "entries.jsonl").write_bytes(b"\n".join(lines))
    res = run(str(rec), "--lang", "ja", *root_args(valid))
    assert res.exit_code == EXIT_INVALID
    said = flat(res.output)
    assert "不合格 検証 V2「ハッシュチェーン」不合格（台帳エントリ 12）:" in said
    assert "無効: 検証 V2" in said
    # a receipt that does not match
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt(valid, cast_index(election)) | {"tracking_code": "ZZZZ"}))
    res = run(str(valid), "--lang", "ja", "--receipt", str(path), *root_args(valid))
    assert res.exit_code == EXIT_RECEIPT_MISMATCH
    assert "受領証は不一致" in flat(res.output)
    res = run(str(valid), "--lang", "ja", "--receipt", str(tmp_path / "nothing.json"), *root_args(valid))
    assert res.exit_code == EXIT_UNREADABLE and flat(res.output).startswith("受領証を読めません:")


# --------------------------------------------------- (5) the end of the report: what was verified, and not

PROPERTIES_EN = (
    "Ballots well formed —",
    "Recorded —",
    "Counted as recorded —",
    "Tally decrypted correctly —",
    "Declaration matches —",
)


def _closing(output: str, title: str) -> str:
    said = flat(output)
    assert title in said
    return said[said.index(title) :]


def test_the_report_ends_with_what_was_verified_and_what_cannot_be(valid: Path) -> None:
    res = run(str(valid), *root_args(valid))
    end = _closing(res.output, "What this verification shows")
    for prop, steps in zip(
        PROPERTIES_EN,
        ("V13, V14, V15, V16", "V1, V2, V3, V4, V5, V6, V7, V8, V12", "V17, V18", "V19, V20, V21", "V22"),
        strict=True,
    ):
        assert prop in end
        tail = end[end.index(prop) :]
        assert tail.index(f"verified ({steps})") < tail.index(".", tail.index(f"verified ({steps})")), prop
    assert "A public verifier cannot check eligibility beyond the roll" in end
    assert "evidence audit (tvote audit-evidence)" in end
    assert end.index("cannot check eligibility") < end.index("VALID (not official")


def test_the_closing_statement_follows_the_checks(valid: Path, tmp_path: Path) -> None:
    end = _closing(run(str(valid)).output, "What this verification shows")  # no --trust-root
    assert "Declaration matches —" in end and "not checked: V22 could not run." in end
    assert "Ballots well formed —" in end and "verified (V13, V14, V15, V16)" in end
    rec = tmp_path / "record"
    shutil.copytree(valid, rec)
    lines = (rec / "entries.jsonl").read_bytes().split(b"\n")
    lines[12], lines[13] = lines[13], lines[12]
    (rec / "entries.jsonl").write_bytes(b"\n".join(lines))
    end = _closing(run(str(rec), *root_args(valid)).output, "What this verification shows")
    recorded = end[end.index("Recorded —") : end.index("Counted as recorded —")]
    assert "NOT verified: V2" in recorded and "failed" in recorded


def test_the_closing_statement_in_japanese(valid: Path) -> None:
    end = _closing(run(str(valid), "--lang", "ja", *root_args(valid)).output, "この検証で確かめたこと")
    for key in ("well-formed", "recorded", "counted", "decrypted", "declaration"):
        title = text(f"props.{key}", "ja").split(" — ")[0]
        assert f"・{title} —" in end, key
    assert end.count("確認済み（") == 5
    assert "公開の検証者には名簿を超えた選挙権の確認はできません" in end
    assert "証拠監査（tvote audit-evidence）" in end

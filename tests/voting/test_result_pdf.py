"""The signed bilingual result declaration (voting._result_pdf) and its verifier check (verifier._pdf)."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json

import pytest
from pyhanko.pdf_utils.generic import pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from verifier._errors import VerifierError
from verifier._pdf import ResultPdfError, check_result_pdf
from voting._result_pdf import (
    CommissionSigner,
    ResultPdfInputError,
    build_result_pdf,
    render_result_pdf,
    result_document,
)
from voting.testing import CommissionTestCa

NOW = dt.datetime.now(dt.UTC)
CHECKPOINT = "3f" * 32
URL = "https://record.example.jp/tsukuba-2027-mayor"
MANIFEST = {
    "format": "tvote-manifest/1",
    "election_id": "tsukuba-2027-mayor",
    "name": {"ja": "つくば市長選挙", "en": "Tsukuba mayoral election"},
    "contests": [
        {
            "id": "mayor",
            "kind": "one_of_n",
            "min": 0,
            "max": 1,
            "name": {"ja": "市長", "en": "Mayor"},
            "selections": [
                {"id": "cand-1", "name": {"ja": "研究 学", "en": "Manabu Kenkyu"}},
                {"id": "cand-2", "name": {"ja": "筑波 山子", "en": "Yamako Tsukuba"}},
            ],
        },
        {
            "id": "referendum",
            "kind": "yes_no",
            "min": 0,
            "max": 1,
            "name": {"ja": "自転車道整備に関する住民投票", "en": "Referendum on cycle paths"},
            "selections": [
                {"id": "yes", "name": {"ja": "賛成", "en": "Yes"}},
                {"id": "no", "name": {"ja": "反対", "en": "No"}},
            ],
        },
    ],
}
RESULT = {
    "results": {"mayor": {"cand-1": 101, "cand-2": 87}, "referendum": {"yes": 120, "no": 66}},
    "trustees_used": [1, 2, 4],
    "cast": 200,
    "counted": 190,
    "superseded": 7,
    "overridden": 3,
    "spoiled": 4,
}


@pytest.fixture(scope="module")
def commission() -> CommissionTestCa:
    return CommissionTestCa.generate(NOW)


@pytest.fixture(scope="module")
def signer(commission: CommissionTestCa) -> CommissionSigner:
    chain = (commission.root_certificate,)
    return CommissionSigner(commission.signer_certificate, commission.signer_key, chain)


@pytest.fixture(scope="module")
def signed_pdf(signer: CommissionSigner) -> bytes:
    return build_result_pdf(MANIFEST, RESULT, checkpoint_hash=CHECKPOINT, record_url=URL, signer=signer)


def expect(check: str, pdf: bytes, roots, result=RESULT, checkpoint=CHECKPOINT) -> None:
    with pytest.raises(ResultPdfError) as ei:
        check_result_pdf(pdf, roots, result, checkpoint)
    assert ei.value.check == check, ei.value
    assert isinstance(ei.value, VerifierError)


def test_generated_pdf_verifies(signed_pdf: bytes, commission: CommissionTestCa) -> None:
    report = check_result_pdf(signed_pdf, [commission.root_certificate], RESULT, CHECKPOINT)
    assert report.election_id == "tsukuba-2027-mayor" and report.record_url == URL
    assert "tvote result declaration signer (TEST)" in report.signer_subject
    assert signed_pdf.startswith(b"%PDF-")


def test_embedded_json_is_the_result(signed_pdf: bytes) -> None:
    r = PdfFileReader(io.BytesIO(signed_pdf))
    names = r.root["/Names"]["/EmbeddedFiles"]["/Names"]
    data = json.loads(names[1]["/EF"]["/F"].data)
    assert data == result_document(MANIFEST, RESULT, checkpoint_hash=CHECKPOINT, record_url=URL)
    assert data["result"]["results"]["mayor"]["cand-1"] == 101


def test_render_is_deterministic_and_in_both_languages() -> None:
    a = render_result_pdf(MANIFEST, RESULT, checkpoint_hash=CHECKPOINT, record_url=URL)
    b = render_result_pdf(MANIFEST, RESULT, checkpoint_hash=CHECKPOINT, record_url=URL)
    assert a == b
    assert b"HeiseiKakuGo-W5" in a


def test_numbers_differ_from_record(signer: CommissionSigner, commission: CommissionTestCa) -> None:
    other = copy.deepcopy(RESULT)
    other["results"]["mayor"]["cand-1"] = 100
    other["results"]["mayor"]["cand-2"] = 88
    pdf = build_result_pdf(MANIFEST, other, checkpoint_hash=CHECKPOINT, record_url=URL, signer=signer)
    check_result_pdf(pdf, [commission.root_certificate], other, CHECKPOINT)  # honest about its own numbers
    expect("pdf.result", pdf, [commission.root_certificate])


def test_other_checkpoint(signed_pdf: bytes, commission: CommissionTestCa) -> None:
    expect("pdf.checkpoint", signed_pdf, [commission.root_certificate], checkpoint="00" * 32)


def test_incremental_update_after_signing_fails(signed_pdf: bytes, commission: CommissionTestCa) -> None:
    w = IncrementalPdfFileWriter(io.BytesIO(signed_pdf))
    w.root["/Lang"] = pdf_string("en")  # a harmless-looking change a viewer would still show as signed
    w.update_root()
    out = io.BytesIO()
    w.write(out)
    assert len(out.getvalue()) > len(signed_pdf) and out.getvalue().startswith(signed_pdf)
    expect("pdf.coverage", out.getvalue(), [commission.root_certificate])


def test_unknown_signer_fails(commission: CommissionTestCa) -> None:
    impostor = CommissionTestCa.generate(NOW)  # same names, different keys
    pdf = build_result_pdf(
        MANIFEST,
        RESULT,
        checkpoint_hash=CHECKPOINT,
        record_url=URL,
        signer=CommissionSigner(
            impostor.signer_certificate, impostor.signer_key, (impostor.root_certificate,)
        ),
    )
    check_result_pdf(pdf, [impostor.root_certificate], RESULT, CHECKPOINT)
    expect("pdf.trust", pdf, [commission.root_certificate])


def test_tampered_bytes_fail(signed_pdf: bytes, commission: CommissionTestCa) -> None:
    i = signed_pdf.index(b"ReportLab Generated")  # header comment: inside the signed byte range
    tampered = signed_pdf[:i] + b"ReportLeb" + signed_pdf[i + 9 :]
    expect("pdf.signature", tampered, [commission.root_certificate])
    expect("pdf.malformed", b"not a pdf at all", [commission.root_certificate])


def test_unsigned_pdf_fails(commission: CommissionTestCa) -> None:
    pdf = render_result_pdf(MANIFEST, RESULT, checkpoint_hash=CHECKPOINT, record_url=URL)
    expect("pdf.signature", pdf, [commission.root_certificate])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m, r: r["results"]["mayor"].pop("cand-2"),
        lambda m, r: r["results"].update(extra={"x": 1}),
        lambda m, r: r.update(cast=-1),
        lambda m, r: m.update(name={"ja": "つくば"}),
    ],
)
def test_bad_inputs_refused(mutate) -> None:
    m, r = copy.deepcopy(MANIFEST), copy.deepcopy(RESULT)
    mutate(m, r)
    with pytest.raises(ResultPdfInputError):
        render_result_pdf(m, r, checkpoint_hash=CHECKPOINT, record_url=URL)
    with pytest.raises(ResultPdfInputError):
        result_document(MANIFEST, RESULT, checkpoint_hash="XYZ", record_url=URL)


def test_validation_time_is_honoured(signed_pdf: bytes, commission: CommissionTestCa) -> None:
    roots = [commission.root_certificate]
    check_result_pdf(signed_pdf, roots, RESULT, CHECKPOINT, validation_time=NOW + dt.timedelta(days=30))
    with pytest.raises(ResultPdfError) as ei:  # the signer certificate is valid for 730 days
        check_result_pdf(signed_pdf, roots, RESULT, CHECKPOINT, validation_time=NOW + dt.timedelta(days=800))
    assert ei.value.check == "pdf.trust"

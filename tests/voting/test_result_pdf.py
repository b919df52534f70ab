"""The signed bilingual result declaration (voting._result_pdf) and its verifier check (verifier._pdf)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import datetime as dt
import hashlib
import io
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils.generic import pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from tests._poppler import poppler, render_without_system_fonts
from verifier._errors import VerifierError
from verifier._pdf import ResultPdfError, _pages, check_result_pdf, expected_figures, page_text
from voting._result_pdf import (
    ICC_PROFILE_FILE,
    CommissionSigner,
    ResultPdfInputError,
    build_result_pdf,
    declaration_figures,
    format_jst,
    render_result_pdf,
    result_document,
    sign_declaration,
    turnout_text,
)
from voting.testing import CommissionTestCa

NOW = dt.datetime.now(dt.UTC)
NOTE = (
    "tvote/tsukuba-2027-mayor\n42\nq83rq83rq83rq83rq83rq83rq83rq83rq83rq83rq8w=\n\n"
    "— tvote/tsukuba-2027-mayor AAAA\n"
)
CHECKPOINT = hashlib.sha256(NOTE.encode()).hexdigest()
URL = "https://vote.example.jp/record"
ROLL = 250
MANIFEST: dict[str, Any] = {
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
        {
            "id": "projects",
            "kind": "up_to_k",
            "min": 0,
            "max": 2,
            "name": {"ja": "補助事業の選定", "en": "Subsidy projects"},
            "selections": [
                {"id": "park", "name": {"ja": "公園", "en": "Park"}},
                {"id": "library", "name": {"ja": "図書館", "en": "Library"}},
                {"id": "bus", "name": {"ja": "バス", "en": "Bus"}},
            ],
        },
    ],
}
RESULT: dict[str, Any] = {
    "results": {
        "mayor": {"cand-1": 101, "cand-2": 87},
        "referendum": {"yes": 120, "no": 66},
        "projects": {"park": 150, "library": 90, "bus": 40},
    },
    "trustees_used": [1, 2, 4],
    "cast": 200,
    "counted": 190,
    "superseded": 7,
    "overridden": 3,
    "spoiled": 4,
}
#: blank = counted - Σ (max 1); unused = 2 · counted - Σ (max 2)
FIGURES = {
    "roll_size": 250,
    "counted": 190,
    "turnout": "76.00%",
    "contests": {"mayor": {"blank": 2}, "referendum": {"blank": 4}, "projects": {"unused": 100}},
}


@pytest.fixture(scope="module")
def commission() -> CommissionTestCa:
    return CommissionTestCa.generate(NOW)


@pytest.fixture(scope="module")
def signer(commission: CommissionTestCa) -> CommissionSigner:
    chain = (commission.root_certificate,)
    return CommissionSigner(commission.signer_certificate, commission.signer_key, chain)


def build(signer: CommissionSigner, result: dict[str, Any] = RESULT, **kw: Any) -> bytes:
    return build_result_pdf(
        MANIFEST,
        result,
        checkpoint_note=kw.pop("note", NOTE),
        record_url=URL,
        roll_size=kw.pop("roll_size", ROLL),
        signer=signer,
        commission=kw.pop("commission", "つくば市選挙管理委員会"),
        signatory=kw.pop("signatory", "つくば市選挙管理委員会委員長"),
        **kw,
    )


#: when the module's ``signed_pdf`` was built: (just before, just after), for the real-time checks (the
#: module's NOW is taken at collection, possibly many minutes before the fixture runs)
BUILT: list[dt.datetime] = []


@pytest.fixture(scope="module")
def signed_pdf(signer: CommissionSigner) -> bytes:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pdf = build(signer)
    BUILT[:] = [before, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)]
    return pdf


def built_then(when: dt.datetime) -> bool:
    """``when`` (to the second) lies in the time ``signed_pdf`` was being built."""
    return BUILT[0] <= when <= BUILT[1]


def check(
    pdf: bytes, roots: list[Any], result: dict[str, Any] = RESULT, checkpoint: str = CHECKPOINT, **kw: Any
):
    return check_result_pdf(
        pdf, roots, result, checkpoint, manifest=MANIFEST, roll_size=kw.pop("roll", ROLL), **kw
    )


def expect(code: str, pdf: bytes, roots: list[Any], **kw: Any) -> ResultPdfError:
    with pytest.raises(ResultPdfError) as ei:
        check(pdf, roots, **kw)
    assert ei.value.check == code, ei.value
    assert isinstance(ei.value, VerifierError)
    return ei.value


def attachments(pdf: bytes) -> dict[str, Any]:
    r = PdfFileReader(io.BytesIO(pdf))
    names = r.root["/Names"]["/EmbeddedFiles"]["/Names"]
    return {str(names[i]): names[i + 1] for i in range(0, len(names), 2)}


# ------------------------------------------------------------------------------------------ content


def test_generated_pdf_verifies(signed_pdf: bytes, commission: CommissionTestCa) -> None:
    report = check(signed_pdf, [commission.root_certificate])
    assert report.election_id == "tsukuba-2027-mayor" and report.record_url == URL
    assert (
        report.commission == "つくば市選挙管理委員会" and report.signatory == "つくば市選挙管理委員会委員長"
    )
    assert "tvote result declaration signer (TEST)" in report.signer_subject
    assert (
        report.signing_time is not None and abs(report.signing_time - report.declared_at).total_seconds() < 60
    )
    assert built_then(report.declared_at)


def test_built_and_checked_inside_a_running_event_loop(signer: CommissionSigner, commission) -> None:
    """pyHanko's synchronous API starts an event loop of its own (``asyncio.run``), which fails inside a
    running one: an ``async`` caller (or a test process where Playwright's synchronous API left its loop
    running) still builds and checks a declaration."""

    async def inside() -> tuple[bytes, Any]:
        asyncio.get_running_loop()  # a loop runs here
        pdf = build(signer)
        return pdf, check(pdf, [commission.root_certificate])

    # a thread of its own for this loop: the test process may run one already (Playwright's, on its worker)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pdf, report = pool.submit(asyncio.run, inside()).result()
    assert report.election_id == "tsukuba-2027-mayor" and attachments(pdf).keys() == {
        "checkpoint.txt",
        "tvote-result.json",
    }


def test_attachments_are_the_result_and_the_checkpoint(signed_pdf: bytes) -> None:
    files = attachments(signed_pdf)
    assert list(files) == ["checkpoint.txt", "tvote-result.json"]  # name-tree order
    assert files["checkpoint.txt"]["/EF"]["/F"].data.decode() == NOTE
    doc = json.loads(files["tvote-result.json"]["/EF"]["/F"].data)
    declared = dt.datetime.strptime(doc["declared_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert doc == result_document(
        MANIFEST,
        RESULT,
        checkpoint_hash=CHECKPOINT,
        record_url=URL,
        roll_size=ROLL,
        declared_at=declared,
        commission="つくば市選挙管理委員会",
        signatory="つくば市選挙管理委員会委員長",
    )
    assert doc["figures"] == FIGURES == expected_figures(MANIFEST, RESULT, ROLL)
    for spec in files.values():
        assert spec["/AFRelationship"] == "/Data" and spec["/UF"] == spec["/F"]
        assert "/ModDate" in spec["/EF"]["/F"]["/Params"]
    assert files["checkpoint.txt"]["/EF"]["/F"]["/Subtype"] == "/text/plain"
    assert files["tvote-result.json"]["/EF"]["/F"]["/Subtype"] == "/application/json"


def test_commission_and_signatory_default_to_the_certificate(signer: CommissionSigner) -> None:
    pdf = build_result_pdf(
        MANIFEST, RESULT, checkpoint_note=NOTE, record_url=URL, roll_size=ROLL, signer=signer
    )
    doc = json.loads(attachments(pdf)["tvote-result.json"]["/EF"]["/F"].data)
    assert doc["commission"] == "Tsukuba City Election Commission (TEST)"
    assert doc["signatory"] == "tvote result declaration signer (TEST)"


@pytest.mark.parametrize(
    ("counted", "roll", "text"),
    [
        (190, 250, "76.00%"),
        (1, 3, "33.33%"),
        (2, 3, "66.67%"),
        (1, 800, "0.13%"),
        (0, 5, "0.00%"),
        (7, 7, "100.00%"),
    ],
)
def test_turnout_is_rounded_half_up(counted: int, roll: int, text: str) -> None:
    assert turnout_text(counted, roll) == text
    r = {
        **RESULT,
        "counted": counted,
        "results": {c: dict.fromkeys(s, 0) for c, s in RESULT["results"].items()},
    }
    assert (
        declaration_figures(MANIFEST, r, roll)["turnout"]
        == text
        == expected_figures(MANIFEST, r, roll)["turnout"]
    )


def test_page_prints_every_figure_in_japan_time(signed_pdf: bytes) -> None:
    text = page_text(PdfFileReader(io.BytesIO(signed_pdf)))
    squashed = "".join(text.split())
    doc = json.loads(attachments(signed_pdf)["tvote-result.json"]["/EF"]["/F"].data)
    declared = dt.datetime.strptime(doc["declared_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    jst = declared.astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert format_jst(declared) == f"{jst.year}年{jst.month}月{jst.day}日 {jst.hour}時{jst.minute:02d}分"
    assert "".join(format_jst(declared).split()) + "（日本時間/JST）" in squashed
    for printed in (
        "選挙人名簿登録者数/Eligiblevoters(ontheroll)250",
        "集計された投票（投票者数）/Ballotscounted(voters)190",
        "投票率/Turnout76.00%",
        "研究学/ManabuKenkyu101",
        "白票（選択なし）/Blank(noselection)2",
        "白票（選択なし）/Blank(noselection)4",
        "未使用の選択数（1票につき2まで）/Unusedchoices(upto2perballot)100",
        "つくば市選挙管理委員会委員長",
        CHECKPOINT,
        URL,
    ):
        assert printed in squashed, printed


def test_format_jst() -> None:
    assert format_jst(dt.datetime(2026, 12, 7, 1, 30, 59, tzinfo=dt.UTC)) == "2026年12月7日 10時30分"
    assert format_jst(dt.datetime(2026, 12, 31, 15, 5, tzinfo=dt.UTC)) == "2027年1月1日 0時05分"


def test_render_is_deterministic() -> None:
    doc = result_document(
        MANIFEST,
        RESULT,
        checkpoint_hash=CHECKPOINT,
        record_url=URL,
        roll_size=ROLL,
        declared_at=NOW,
        commission="c",
        signatory="s",
    )
    assert render_result_pdf(doc, MANIFEST) == render_result_pdf(doc, MANIFEST)


# ------------------------------------------------------------------------------- fonts and PDF/A


def test_pdffonts_lists_every_font_embedded(signed_pdf: bytes, tmp_path: Path) -> None:
    pdf = tmp_path / "result.pdf"
    pdf.write_bytes(signed_pdf)
    out = subprocess.run(
        [poppler("pdffonts"), str(pdf)], capture_output=True, text=True, check=True, timeout=60
    )
    header, rule, *rows = out.stdout.splitlines()
    emb = header.index(" emb ") + 1
    assert rule.startswith("----") and rows
    assert all(row[emb : emb + 3] == "yes" for row in rows), out.stdout
    assert all("IPAexGothic" in row.split()[0] for row in rows), out.stdout  # one font, subsets of it


def test_page_one_renders_the_same_without_system_fonts(signed_pdf: bytes, tmp_path: Path) -> None:
    pdf = tmp_path / "result.pdf"
    pdf.write_bytes(signed_pdf)
    bare = render_without_system_fonts(pdf, tmp_path / "bare")
    assert "font" not in bare.stderr.lower(), bare.stderr  # poppler says so when it must substitute a font
    subprocess.run(
        [poppler("pdftoppm"), "-r", "60", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "usual")],
        check=True,
        timeout=120,
    )
    png = (tmp_path / "bare-1.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000  # a page of text, not a blank one
    assert png == (tmp_path / "usual-1.png").read_bytes()  # the machine's fonts change nothing
    text = subprocess.run(
        [poppler("pdftotext"), "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "選挙結果の告示" in text and "白票" in text and "76.00%" in text  # an independent extractor agrees


def test_pdfa_3b_markers(signed_pdf: bytes) -> None:
    assert re.match(rb"%PDF-1\.[0-7]\r?\n%[\x80-\xff]{4}", signed_pdf)  # header and binary comment
    r = PdfFileReader(io.BytesIO(signed_pdf))
    assert r.root["/Version"] == "/1.7" and "/Encrypt" not in r.trailer and "/ID" in r.trailer
    xmp = r.root["/Metadata"]
    assert "/Filter" not in xmp  # the XMP packet stays readable
    packet = xmp.data.decode("utf-8")
    assert packet.count('pdfaid:part="3"') == 1 and packet.count('pdfaid:conformance="B"') == 1
    assert packet.startswith("<?xpacket begin=") and packet.rstrip().endswith('<?xpacket end="r"?>')
    assert len(r.root["/OutputIntents"]) == 1
    intent = r.root["/OutputIntents"][0]
    assert intent["/S"] == "/GTS_PDFA1" and intent["/OutputConditionIdentifier"] == "sRGB IEC61966-2.1"
    profile = intent["/DestOutputProfile"]
    assert profile["/N"] == 3 and profile.data == ICC_PROFILE_FILE.read_bytes()
    af = r.root["/AF"]
    assert {str(af[i]["/F"]) for i in range(len(af))} == {"checkpoint.txt", "tvote-result.json"}
    # the information dictionary and the XMP packet agree (ISO 19005-3 §6.6.2.3.1)
    info = r.trailer["/Info"]
    created = info["/CreationDate"]
    assert re.search(r'xmp:CreateDate="([^"]+)"', packet)[1] == _pdf_date_to_iso(created)
    assert re.search(r'xmp:ModifyDate="([^"]+)"', packet)[1] == _pdf_date_to_iso(info["/ModDate"])
    assert f'pdf:Producer="{info["/Producer"]}"' in packet
    assert f"<rdf:li>{info['/Author']}</rdf:li>" in packet
    assert built_then(dt.datetime.fromisoformat(_pdf_date_to_iso(created)))  # the real time
    raw = signed_pdf
    # ISO 19005-3 §6.1.7.1 (veraPDF 6.1.7.1-1/-2; reportlab's own output fails -2): `stream` followed by
    # CRLF or LF, and an end-of-line marker before every `endstream`
    keywords = [m[1] for m in re.finditer(rb">>\s*stream(\r\n|\r|\n|.)", raw, re.S)]
    assert keywords and set(keywords) <= {b"\r\n", b"\n"}
    assert raw.count(b"endstream") == len(keywords) == len(re.findall(rb"[\r\n]endstream", raw))
    # no transparency: no soft masks or transparency groups anywhere on the page
    assert b"/SMask" not in raw and b"/CA " not in raw and b"/Group" not in raw


def _pdf_date_to_iso(value: str) -> str:
    m = re.fullmatch(r"D:(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(Z|[+-]\d\d'\d\d'?)?", str(value))
    assert m is not None, value
    tz = "+00:00" if m[7] in (None, "Z") else m[7].replace("'", ":").rstrip(":")
    return f"{m[1]}-{m[2]}-{m[3]}T{m[4]}:{m[5]}:{m[6]}{tz}"


# ------------------------------------------------------------------------------- tampered figures


def signed_with(
    signer: CommissionSigner,
    printed: Callable[[dict[str, Any]], None],
    attached: Callable[[dict[str, Any]], None],
) -> bytes:
    """A declaration signed with the commission's key whose page shows ``printed(doc)`` and whose attachment
    is ``attached(doc)`` (a dishonest or broken producer)."""
    doc = result_document(
        MANIFEST,
        RESULT,
        checkpoint_hash=CHECKPOINT,
        record_url=URL,
        roll_size=ROLL,
        declared_at=dt.datetime.now(dt.UTC),
        commission="つくば市選挙管理委員会",
        signatory="委員長",
    )
    shown, kept = copy.deepcopy(doc), copy.deepcopy(doc)
    printed(shown)
    attached(kept)
    return sign_declaration(render_result_pdf(shown, MANIFEST), kept, MANIFEST, NOTE.encode(), signer)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = doc
        for p in parents:
            node = node[p]
        node[last] = value

    return mutate


def _same(doc: dict[str, Any]) -> None:
    return None


FIGURE_FORGERIES = {
    "roll size": _set("figures/roll_size", 240),
    "ballots counted": _set("figures/counted", 191),
    "turnout": _set("figures/turnout", "79.17%"),
    "blank (mayor)": _set("figures/contests/mayor/blank", 3),
    "blank (referendum)": _set("figures/contests/referendum/blank", 0),
    "unused choices": _set("figures/contests/projects/unused", 99),
}


@pytest.mark.parametrize("name", sorted(FIGURE_FORGERIES))
def test_a_forged_figure_printed_and_attached_fails(name: str, signer: CommissionSigner, commission) -> None:
    forge = FIGURE_FORGERIES[name]
    e = expect("pdf.figures", signed_with(signer, forge, forge), [commission.root_certificate])
    assert "differ from the record" in e.message


PRINT_ONLY = {
    **FIGURE_FORGERIES,
    "a candidate's count": _set("result/results/mayor/cand-2", 88),
    "ballots cast": _set("result/cast", 201),
    "commission": _set("commission", "別の委員会"),
    "record address": _set("record_url", "https://elsewhere.example/"),
}


@pytest.mark.parametrize("name", sorted(PRINT_ONLY))
def test_a_figure_printed_otherwise_than_attached_fails(
    name: str, signer: CommissionSigner, commission
) -> None:
    pdf = signed_with(signer, PRINT_ONLY[name], _same)
    expect("pdf.text", pdf, [commission.root_certificate])


def test_honest_page_with_tampered_attachment_fails(signer: CommissionSigner, commission) -> None:
    pdf = signed_with(signer, _same, _set("figures/contests/mayor/blank", 5))
    expect("pdf.figures", pdf, [commission.root_certificate])
    assert check(signed_with(signer, _same, _same), [commission.root_certificate]) is not None  # the control


def test_declaration_time_far_from_signing_time_fails(signer: CommissionSigner, commission) -> None:
    pdf = build(signer, declared_at=NOW - dt.timedelta(days=1))
    expect("pdf.time", pdf, [commission.root_certificate])


def test_other_roll_size_in_the_record_fails(signed_pdf: bytes, commission: CommissionTestCa) -> None:
    expect("pdf.figures", signed_pdf, [commission.root_certificate], roll=251)


# ------------------------------------------------------------------------------- signature, checkpoint


def test_numbers_differ_from_record(signer: CommissionSigner, commission: CommissionTestCa) -> None:
    other = copy.deepcopy(RESULT)
    other["results"]["mayor"]["cand-1"] = 100
    other["results"]["mayor"]["cand-2"] = 88
    pdf = build(signer, other)
    check(pdf, [commission.root_certificate], other)  # honest about its own numbers
    expect("pdf.result", pdf, [commission.root_certificate])


def test_other_checkpoint(signed_pdf: bytes, commission: CommissionTestCa) -> None:
    expect("pdf.checkpoint", signed_pdf, [commission.root_certificate], checkpoint="00" * 32)


def test_attached_checkpoint_must_be_the_cited_one(signer: CommissionSigner, commission) -> None:
    doc = result_document(
        MANIFEST,
        RESULT,
        checkpoint_hash=CHECKPOINT,
        record_url=URL,
        roll_size=ROLL,
        declared_at=dt.datetime.now(dt.UTC),
        commission="c",
        signatory="s",
    )
    pdf = sign_declaration(render_result_pdf(doc, MANIFEST), doc, MANIFEST, b"another note\n", signer)
    e = expect("pdf.checkpoint", pdf, [commission.root_certificate])
    assert "checkpoint.txt" in e.message


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
    pdf = build(
        CommissionSigner(impostor.signer_certificate, impostor.signer_key, (impostor.root_certificate,))
    )
    check(pdf, [impostor.root_certificate])
    expect("pdf.trust", pdf, [commission.root_certificate])


def test_tampered_bytes_fail(signed_pdf: bytes, commission: CommissionTestCa) -> None:
    # one byte of the binary comment after the header: inside the signed byte range, the file still parses
    i = signed_pdf.index(b"\n%") + 2
    tampered = signed_pdf[:i] + bytes([signed_pdf[i] ^ 1]) + signed_pdf[i + 1 :]
    expect("pdf.signature", tampered, [commission.root_certificate])
    expect("pdf.malformed", b"not a pdf at all", [commission.root_certificate])


def test_unsigned_pdf_fails(commission: CommissionTestCa) -> None:
    doc = result_document(
        MANIFEST,
        RESULT,
        checkpoint_hash=CHECKPOINT,
        record_url=URL,
        roll_size=ROLL,
        declared_at=NOW,
        commission="c",
        signatory="s",
    )
    expect("pdf.signature", render_result_pdf(doc, MANIFEST), [commission.root_certificate])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m, r, kw: r["results"]["mayor"].pop("cand-2"),
        lambda m, r, kw: r["results"].update(extra={"x": 1}),
        lambda m, r, kw: r.update(cast=-1),
        lambda m, r, kw: m.update(name={"ja": "つくば"}),
        lambda m, r, kw: kw.update(roll_size=189),  # fewer on the roll than counted
        lambda m, r, kw: kw.update(roll_size=0),
        lambda m, r, kw: r["results"]["mayor"].update({"cand-1": 104}),  # 191 votes for 190 ballots (max 1)
        lambda m, r, kw: kw.update(checkpoint_hash="XYZ"),
        lambda m, r, kw: kw.update(commission="\u202e"),
        lambda m, r, kw: kw.update(declared_at=dt.datetime(2026, 12, 7)),  # naive
        lambda m, r, kw: kw.update(record_url="javascript:alert(1)"),
    ],
)
def test_bad_inputs_refused(mutate) -> None:
    m, r = copy.deepcopy(MANIFEST), copy.deepcopy(RESULT)
    kw: dict[str, Any] = {
        "checkpoint_hash": CHECKPOINT,
        "record_url": URL,
        "roll_size": ROLL,
        "declared_at": NOW,
        "commission": "c",
        "signatory": "s",
    }
    mutate(m, r, kw)
    with pytest.raises(ResultPdfInputError):
        result_document(m, r, **kw)


def test_checkpoint_note_must_be_a_note(signer: CommissionSigner) -> None:
    with pytest.raises(ResultPdfInputError):
        build(signer, note="no trailing newline")


def test_validation_time_is_honoured(signed_pdf: bytes, commission: CommissionTestCa) -> None:
    roots = [commission.root_certificate]
    check(signed_pdf, roots, validation_time=NOW + dt.timedelta(days=30))
    with pytest.raises(ResultPdfError) as ei:  # the signer certificate is valid for 730 days
        check(signed_pdf, roots, validation_time=NOW + dt.timedelta(days=800))
    assert ei.value.check == "pdf.trust"


def _page_images(pdf: bytes) -> list[int]:
    """Per page, how many image XObjects it draws (the QR code is the declaration's only image)."""
    r = PdfFileReader(io.BytesIO(pdf))
    counts = []
    for page in _pages(r):
        xobjects = page["/Resources"]["/XObject"] if "/XObject" in page["/Resources"] else {}
        images = 0
        for name in xobjects:
            x = xobjects[name]
            if x["/Subtype"] == "/Image":
                images += 1
            elif "/Resources" in x and "/XObject" in x["/Resources"]:  # reportlab wraps the image in a form
                inner = x["/Resources"]["/XObject"]
                images += sum(1 for n in inner if inner[n]["/Subtype"] == "/Image")
        counts.append(images)
    return counts


def test_an_ordinary_ballot_fits_one_page_with_the_qr_code(signed_pdf: bytes) -> None:
    assert _page_images(signed_pdf) == [1]


def test_a_long_ballot_keeps_the_qr_code_on_page_one_and_verifies(
    signer: CommissionSigner, commission
) -> None:
    m = copy.deepcopy(MANIFEST)
    m["contests"][0]["selections"] = [
        {"id": f"c{k}", "name": {"ja": f"候補者 {k} 番", "en": f"Candidate number {k}"}} for k in range(60)
    ]
    r = copy.deepcopy(RESULT)
    r["results"]["mayor"] = {f"c{k}": k % 4 for k in range(60)}
    pdf = build_result_pdf(m, r, checkpoint_note=NOTE, record_url=URL, roll_size=ROLL, signer=signer)
    images = _page_images(pdf)
    assert len(images) > 1 and images[0] == 1 == sum(images)  # the table runs on; the QR code stays on page 1
    check_result_pdf(pdf, [commission.root_certificate], r, CHECKPOINT, manifest=m, roll_size=ROLL)


def test_names_with_markup_characters_print_and_verify(signer: CommissionSigner, commission) -> None:
    m = copy.deepcopy(MANIFEST)
    m["contests"][0]["selections"][0]["name"] = {"ja": "髙橋 太郎 & <二郎>", "en": "Taro  Takahashi &amp; co"}
    pdf = build_result_pdf(m, RESULT, checkpoint_note=NOTE, record_url=URL, roll_size=ROLL, signer=signer)
    assert "髙橋太郎&<二郎>/TaroTakahashi&amp;co101" in "".join(
        page_text(PdfFileReader(io.BytesIO(pdf))).split()
    )
    check_result_pdf(pdf, [commission.root_certificate], RESULT, CHECKPOINT, manifest=m, roll_size=ROLL)


@pytest.mark.parametrize("name", ["𠮷田 太郎", "笑顔 😀"])
def test_a_name_the_font_cannot_print_is_refused(name: str, signer: CommissionSigner) -> None:
    m = copy.deepcopy(MANIFEST)
    m["contests"][0]["selections"][0]["name"] = {"ja": name, "en": "Taro Yoshida"}
    with pytest.raises(ResultPdfInputError, match="cannot print: U\\+"):
        build_result_pdf(m, RESULT, checkpoint_note=NOTE, record_url=URL, roll_size=ROLL, signer=signer)

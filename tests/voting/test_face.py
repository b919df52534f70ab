"""Face-match hook: the HTTP adapter against a real tiny matcher app on loopback; the test matcher."""

from __future__ import annotations

import asyncio
import base64

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voting.auth import FaceMatchError
from voting.auth._face import (
    DeterministicTestMatcher,
    FaceMatcher,
    FaceMatchResult,
    HttpFaceMatcher,
    LiveCapture,
    ReferenceImageSource,
    require_match,
)
from voting.testing import LoopbackServer

FACE = b"\xff\xd8synthetic-face-A"
OTHER = b"\xff\xd8synthetic-face-B"
REF = ReferenceImageSource(FACE)
SAME = LiveCapture(FACE, liveness_evidence=b"blink-sequence")
DIFF = LiveCapture(OTHER, liveness_evidence=b"blink-sequence")
SPOOF = LiveCapture(FACE)  # no liveness evidence
ENGINE = "tiny-matcher/0.1"


async def _match(request: Request) -> Response:
    body = await request.json()
    ref = ReferenceImageSource(base64.b64decode(body["reference"]["data"]))
    live = LiveCapture(
        base64.b64decode(body["live"]["data"]),
        liveness_evidence=base64.b64decode(body["live"]["liveness_evidence"]),
    )
    r = DeterministicTestMatcher(ENGINE).match(ref, live)
    ok = {
        "decision": r.decision,
        "score": r.score,
        "threshold": r.threshold,
        "liveness": r.liveness,
        "engine_id": r.engine_id,
    }
    mode = request.path_params["mode"]
    if mode == "ok":
        return JSONResponse(ok)
    if mode == "extra":
        return JSONResponse({**ok, "template": "AAAA"})
    if mode == "missing":
        return JSONResponse({k: v for k, v in ok.items() if k != "liveness"})
    if mode == "intbool":
        return JSONResponse({**ok, "decision": 1})
    if mode == "inconsistent":
        return JSONResponse({**ok, "decision": True, "score": 0.1})
    if mode == "nan":
        return Response(
            '{"decision": false, "score": NaN, "threshold": 0.8, "liveness": true, "engine_id": "x"}',
            media_type="application/json",
        )
    if mode == "notjson":
        return Response("<html>oops</html>", media_type="text/html")
    if mode == "error":
        return JSONResponse(ok, status_code=500)
    if mode == "slow":
        await asyncio.sleep(1.5)
        return JSONResponse(ok)
    return JSONResponse({}, status_code=404)


@pytest.fixture(scope="module")
def matcher_url():
    with LoopbackServer(Starlette(routes=[Route("/{mode}", _match, methods=["POST"])])) as s:
        yield s.url


def test_http_matcher_accepts_match(matcher_url) -> None:
    m = HttpFaceMatcher(f"{matcher_url}/ok", expected_engine_id=ENGINE)
    assert isinstance(m, FaceMatcher)
    r = require_match(m.match(REF, SAME))
    assert r.decision and r.liveness and r.score == 1.0 and r.engine_id == ENGINE
    assert r.record_entry() == {"decision": True, "engine": ENGINE}


def test_http_matcher_negative_and_spoof(matcher_url) -> None:
    m = HttpFaceMatcher(f"{matcher_url}/ok")
    r = m.match(REF, DIFF)
    assert not r.decision and r.score < r.threshold
    assert r.record_entry() == {"decision": False, "engine": ENGINE}
    with pytest.raises(FaceMatchError) as ei:
        require_match(r)
    assert ei.value.code == "face.rejected"
    spoof = m.match(REF, SPOOF)
    assert spoof.decision and not spoof.liveness and not spoof.accepted
    with pytest.raises(FaceMatchError):
        require_match(spoof)


@pytest.mark.parametrize(
    "mode,code",
    [
        ("extra", "face.response"),
        ("missing", "face.response"),
        ("intbool", "face.response"),
        ("inconsistent", "face.response"),
        ("nan", "face.response"),
        ("notjson", "face.response"),
        ("error", "face.transport"),
        ("nope", "face.transport"),
        ("slow", "face.transport"),
    ],
)
def test_http_matcher_fails_closed(matcher_url, mode, code) -> None:
    m = HttpFaceMatcher(f"{matcher_url}/{mode}", timeout=0.5)
    with pytest.raises(FaceMatchError) as ei:
        m.match(REF, SAME)
    assert ei.value.code == code, ei.value


def test_http_matcher_unexpected_engine(matcher_url) -> None:
    with pytest.raises(FaceMatchError) as ei:
        HttpFaceMatcher(f"{matcher_url}/ok", expected_engine_id="other-engine").match(REF, SAME)
    assert ei.value.code == "face.response"


def test_unreachable_matcher() -> None:
    with pytest.raises(FaceMatchError) as ei:
        HttpFaceMatcher("http://127.0.0.1:9/match", timeout=1).match(REF, SAME)
    assert ei.value.code == "face.transport"


def test_deterministic_matcher() -> None:
    m = DeterministicTestMatcher()
    assert m.match(REF, SAME) == m.match(REF, SAME)
    assert m.match(REF, SAME).accepted
    assert not m.match(REF, DIFF).decision and m.match(REF, DIFF) == m.match(REF, DIFF)
    assert not m.match(REF, SPOOF).accepted


def test_result_validation_and_no_images_in_repr() -> None:
    with pytest.raises(FaceMatchError):
        FaceMatchResult(True, 1.5, 0.8, True, "e")
    with pytest.raises(FaceMatchError):
        FaceMatchResult(True, 0.5, 0.8, True, "e")
    assert "synthetic" not in repr(REF) + repr(SAME)


def test_directory_reference_source_answers_only_for_the_roll_alias(tmp_path) -> None:
    from voting.auth import DirectoryReferencePhotoSource, ReferencePhotoSource

    alias_b, alias_c, alias_d = b"\x0b" * 32, b"\x0c" * 32, b"\x0d" * 32
    (tmp_path / f"{alias_b.hex()}.png").write_bytes(FACE)
    (tmp_path / f"{alias_c.hex()}.jpg").write_bytes(OTHER)
    (tmp_path / f"{alias_c.hex()}.png").write_bytes(FACE)  # two photos for one resident: ambiguous
    (tmp_path / f"{alias_d.hex()}.webp").write_bytes(b"")
    src = DirectoryReferencePhotoSource(tmp_path)
    assert isinstance(src, ReferencePhotoSource)
    ref = src.photo("e", alias_b)
    assert ref.image == FACE and ref.media_type == "image/png"
    for alias in (alias_c, alias_d, b"\x0e" * 32, b"short"):
        with pytest.raises(FaceMatchError) as ei:
            src.photo("e", alias)
        assert ei.value.code == "face.reference"
    alias_f = b"\x0f" * 32
    (tmp_path / f"{alias_f.hex()}.png").symlink_to(tmp_path / f"{alias_b.hex()}.png")
    with pytest.raises(FaceMatchError):
        src.photo("e", alias_f)

"""The result declaration's settings: the public record's address, the commission's name, the signatory's
title (docs/operator-guide.md, configuration table; docs/result-pdf.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voting._db import make_engine
from voting._errors import ConfigurationError
from voting._settings import Settings
from voting.service import ElectionService

TOKEN = "a-long-enough-admin-token-" + "x" * 32


def test_settings_from_the_environment(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "TVOTE_ENVIRONMENT": "test",
            "TVOTE_ADMIN_TOKEN": TOKEN,
            "TVOTE_DATA_DIR": str(tmp_path),
            "TVOTE_PUBLIC_URL": "https://vote.example.jp",
            "TVOTE_PUBLIC_RECORD_URL": "https://www.city.example.jp/election/record",
            "TVOTE_COMMISSION_NAME": "つくば市選挙管理委員会",
            "TVOTE_SIGNATORY_TITLE": "つくば市選挙管理委員会委員長",
        }
    )
    assert s.effective_public_record_url == "https://www.city.example.jp/election/record"
    assert (s.commission_name, s.signatory_title) == (
        "つくば市選挙管理委員会",
        "つくば市選挙管理委員会委員長",
    )
    service = ElectionService(make_engine(s.effective_database_url), settings=s)
    assert service.record_url() == "https://www.city.example.jp/election/record"


def test_the_record_address_defaults_to_the_booth_home_page(tmp_path: Path) -> None:
    s = Settings(
        environment="test", admin_token=TOKEN, data_dir=tmp_path, public_url="https://vote.example.jp/"
    )
    assert s.effective_public_record_url == "https://vote.example.jp/"
    assert (
        "/api/v1/ledger"
        not in ElectionService(make_engine(s.effective_database_url), settings=s).record_url()
    )
    assert s.commission_name is None and s.signatory_title is None  # the certificate's names are printed


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        (
            {"environment": "production", "public_record_url": "http://www.city.example.jp/"},
            "config.public_record_url",
        ),
        ({"public_record_url": "ftp://www.city.example.jp/"}, "config.public_record_url"),
        ({"public_record_url": "javascript:alert(1)"}, "config.public_record_url"),
        ({"commission_name": "つくば市\u202e選挙管理委員会"}, "config.commission_name"),
        ({"commission_name": "   "}, "config.commission_name"),
        ({"signatory_title": "委員長" * 100}, "config.signatory_title"),
    ],
)
def test_bad_values_are_refused(changes: dict[str, str], code: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as e:
        Settings(**{"environment": "test", "admin_token": TOKEN, "data_dir": tmp_path, **changes})  # type: ignore[arg-type]
    assert e.value.code == code


def test_production_refuses_a_manifest_the_declaration_cannot_print(tmp_path: Path) -> None:
    """A name outside the declaration's font (IPAex Gothic) would stop the declaration at the very end:
    production refuses the manifest before it goes on the ledger, naming the field and the code point."""
    from _service_util import manifest_dict

    from voting._manifest import ManifestError

    s = Settings(environment="production", admin_token=TOKEN, data_dir=tmp_path)
    service = ElectionService(make_engine(s.effective_database_url), settings=s)
    m = manifest_dict(3, 2)
    m["contests"][0]["selections"][0]["name"]["ja"] = "𠮷田 太郎"
    with pytest.raises(ManifestError) as e:
        service.create_election(m)
    assert e.value.code == "election.preflight"
    fonts = [d for d in e.value.details if d["loc"] == ["result_pdf_font"]]
    assert len(fonts) == 1 and "U+20BB7" in fonts[0]["msg"] and ".selections[" in fonts[0]["msg"]

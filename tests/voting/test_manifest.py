"""Manifest validation, loading (YAML and JSON), the published form and the base hash."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import rfc8785

from crypto._ballot import ContestSpec
from crypto._hash import tagged_sha256
from voting._errors import ManifestError
from voting._manifest import load_manifest, parse_manifest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tsukuba-2027" / "manifest.yaml"


def _base() -> dict:
    return load_manifest(EXAMPLE).to_dict()


def test_example_loads_and_hash_is_the_documented_transcript():
    m = load_manifest(EXAMPLE)
    d = m.to_dict()
    assert d["format"] == "tvote-manifest/1"
    assert d["voting_period"] == {"opens": "2027-04-18T00:00:00Z", "closes": "2027-04-25T11:00:00Z"}
    assert m.base_hash == tagged_sha256("election-base-hash", rfc8785.dumps(d))
    # the published form round-trips to the same manifest and hash
    assert parse_manifest(d).base_hash == m.base_hash
    assert parse_manifest(json.dumps(d)).to_dict() == d


def test_json_file_loads(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps(_base(), ensure_ascii=False), encoding="utf-8")
    assert load_manifest(p).to_dict() == _base()


def test_base_hash_changes_with_any_field():
    d = _base()
    h = parse_manifest(d).base_hash
    d2 = copy.deepcopy(d)
    d2["contests"][0]["selections"][0]["name"]["en"] = "Someone Else"
    assert parse_manifest(d2).base_hash != h


def test_contest_specs():
    specs = load_manifest(EXAMPLE).contest_specs()
    assert specs[0] == ContestSpec("mayor", ("cand-1", "cand-2", "cand-3"), 0, 1)
    assert specs[1] == ContestSpec("projects", ("library", "cycling", "childcare", "science"), 0, 2)
    assert specs[2] == ContestSpec("referendum", ("yes", "no"), 0, 1)


def _problems(mutate) -> list[dict]:
    d = _base()
    mutate(d)
    with pytest.raises(ManifestError) as e:
        parse_manifest(d)
    assert e.value.code == "manifest.invalid"
    return e.value.details


@pytest.mark.parametrize(
    ("mutate", "loc", "fragment"),
    [
        (lambda d: d.update(election_id="Bad Id"), "election_id", "pattern"),
        (lambda d: d["name"].pop("ja"), "name.ja", "required"),
        (lambda d: d["voting_period"].update(closes="2027-04-01T00:00:00Z"), "voting_period", "after"),
        (
            lambda d: d["voting_period"].update(opens="2027-04-18T00:00:00"),
            "voting_period.opens",
            "time zone",
        ),
        (lambda d: d["contests"][0].update(max=2), "contests[0]", "max 1"),
        (lambda d: d["contests"][1].update(max=9), "contests[1]", "exceeds the number of selections"),
        (lambda d: d["contests"][1].update(min=3), "contests[1]", "min (3) exceeds max"),
        (lambda d: d["contests"][2]["selections"][0].update(id="maybe"), "contests[2]", "yes"),
        (
            lambda d: d["contests"][0]["selections"].append(d["contests"][0]["selections"][0]),
            "contests[0]",
            "unique",
        ),
        (lambda d: d["contests"].append(d["contests"][0]), "(manifest)", "contest ids must be unique"),
        (lambda d: d.update(trustees={"n": 3, "threshold": 4}), "trustees", "exceeds"),
        (lambda d: d.update(trustees={"n": 0, "threshold": 0}), "trustees.n", "greater than"),
        (lambda d: d.update(revote_rule="first-wins"), "revote_rule", "last-internet-kiosk-overrides"),
        (lambda d: d.update(auth_methods=["password"]), "auth_methods[0]", "jpki"),
        (lambda d: d.update(auth_methods=[]), "auth_methods", "at least 1"),
        (lambda d: d.update(extra="x"), "extra", "not permitted"),
        (lambda d: d.update(witnesses={"quorum": 1, "keys": []}), "witnesses", "quorum"),
        (
            lambda d: d.update(
                witnesses={"quorum": 1, "keys": [{"name": "w", "bls_public_key": "ab", "pop": "cd"}]}
            ),
            "witnesses.keys[0].bls_public_key",
            "pattern",
        ),
    ],
)
def test_invalid_manifests_name_the_problem(mutate, loc, fragment):
    problems = _problems(mutate)
    assert any(p["loc"] == loc and fragment in p["msg"] for p in problems), problems


def test_syntax_errors():
    with pytest.raises(ManifestError) as e:
        parse_manifest("election_id: [unclosed")
    assert e.value.code == "manifest.syntax"
    with pytest.raises(ManifestError) as e:
        parse_manifest("- a list\n- not a mapping\n")
    assert e.value.code == "manifest.syntax"
    with pytest.raises(ManifestError) as e:
        load_manifest(Path("/nonexistent/manifest.yaml"))
    assert e.value.code == "manifest.unreadable"


def test_unquoted_yaml_yes_is_a_clear_error():
    text = EXAMPLE.read_text(encoding="utf-8").replace('{id: "yes"', "{id: yes")
    with pytest.raises(ManifestError) as e:
        parse_manifest(text)
    assert any(p["loc"].startswith("contests[2].selections[0].id") for p in e.value.details)


@pytest.mark.parametrize(
    ("quoted", "bare"),
    [('{id: "yes"', "{id: yes"), ('en: "No"', "en: No"), ('en: "Yes"', "en: on"), ('en: "Yes"', "en: OFF")],
)
def test_unquoted_yaml_boolean_gets_a_quote_it_hint(quoted, bare):
    """YAML 1.1 reads yes/no/on/off unquoted as booleans: the problem names the field and says to quote."""
    text = EXAMPLE.read_text(encoding="utf-8").replace(quoted, bare, 1)
    assert text != EXAMPLE.read_text(encoding="utf-8")
    with pytest.raises(ManifestError) as e:
        parse_manifest(text)
    word = bare.split()[-1]
    assert any(p["loc"].startswith("contests[2].selections[") for p in e.value.details), e.value.details
    assert any(f"quote it: '{word}'" in p["msg"] for p in e.value.details), e.value.details


def test_json_boolean_where_text_is_expected_gets_a_hint():
    d = _base()
    d["contests"][2]["selections"][0]["name"]["en"] = True
    with pytest.raises(ManifestError) as e:
        parse_manifest(d)
    assert any(
        p["loc"] == "contests[2].selections[0].name.en" and "quote" in p["msg"] for p in e.value.details
    )


_BAD_TEXT = [
    ("Candidate\x00One", "control character (U+0000)"),
    ("\x1b[31mCandidate One\x1b[0m", "control character (U+001B)"),
    ("Candidate\nOne", "control character (U+000A)"),
    ("Candidate\x85One", "control character (U+0085)"),  # C1 (NEL)
    ("\u202eenO etadidnaC", "format character (U+202E)"),  # right-to-left override
    ("Candidate \u2066One\u2069", "format character (U+2066)"),  # bidi isolate
    ("Candidate One\u200b", "format character (U+200B)"),  # zero-width space
    ("Cand\u200didate", "format character (U+200D)"),  # zero-width joiner
    ("\ufeffCandidate", "format character (U+FEFF)"),
    ("Candidate\u2028One", "line separator (U+2028)"),
    ("\ue000", "private-use character (U+E000)"),
    ("\u3164", "invisible filler character (U+3164)"),  # Hangul filler: a "letter" that shows nothing
    ("\u3000\u3000", "empty"),  # ideographic spaces only (stripped)
    ("\u00a0", "empty"),
    ("\ufe0f", "blank"),  # a variation selector alone
    ("\u3000\U000e0100", "blank"),  # an ideographic variation selector after a space
    ("x" * 201, "longer than 200 characters (201)"),
]


@pytest.mark.parametrize(("text", "fragment"), _BAD_TEXT)
def test_manifest_text_is_refused_with_the_field_named(text, fragment):
    d = _base()
    d["contests"][1]["selections"][0]["name"]["en"] = text
    with pytest.raises(ManifestError) as e:
        parse_manifest(d)
    assert e.value.details == [{"loc": "contests[1].selections[0].name.en", "msg": e.value.details[0]["msg"]}]
    assert fragment in e.value.details[0]["msg"], e.value.details
    assert text not in e.value.message  # the operator's terminal never receives the offending text back


@pytest.mark.parametrize(
    "path", [("name", "ja"), ("contests", 0, "name", "en"), ("contests", 2, "selections", 1, "name", "ja")]
)
def test_every_label_is_checked(path):
    d = _base()
    target = d
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = "ok\u202e"
    with pytest.raises(ManifestError) as e:
        parse_manifest(d)
    want = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    assert [p["loc"] for p in e.value.details] == [want]


def test_legitimate_japanese_text_is_accepted():
    d = _base()
    # full-width space inside, an ideographic variation selector (葛 with IVS), long but within bounds
    d["contests"][0]["selections"][0]["name"]["ja"] = "葛\U000e0100城\u3000太郎"
    d["contests"][0]["selections"][1]["name"]["ja"] = "あ" * 200
    d["contests"][0]["selections"][1]["name"]["en"] = "  Padded  "  # surrounding spaces are stripped
    m = parse_manifest(d)
    assert m.contests[0].selections[1].name.en == "Padded"


def test_display_text_rule_is_shared_with_the_verifier():
    """One definition: the server's model and the verifier both call ledger.record.check_display_text."""
    import verifier._manifest as vm
    import voting._manifest as sm
    from ledger.record import check_display_text

    assert sm.check_display_text is check_display_text
    assert vm.check_display_text is check_display_text


def test_manifest_is_immutable():
    m = load_manifest(EXAMPLE)
    with pytest.raises(Exception):
        m.election_id = "other"  # type: ignore[misc]

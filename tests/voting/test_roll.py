"""Voter roll loading: aliases, match keys, the commitment, and the My Number refusal."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest

from ledger.merkle import leaf_hash, root
from voting._errors import RollFileError
from voting._roll import parse_roll_csv, voter_alias
from voting.auth._roll import RollKey, roll_match_key

KEY = bytes(range(32))
EID = "tsukuba-2027-mayor"
ROLL = (
    "resident_id,name,birth_date,address\n"
    "R-1,筑波 太郎,1980-05-01,茨城県つくば市研究学園1-1-1\n"
    "R-2,筑波 花子,1985-11-23,茨城県つくば市研究学園1-1-1\n"
    "R-3,Test Three,1999-02-28,茨城県つくば市天王台1-1-1\n"
)


def _lp(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def test_alias_is_the_documented_hmac():
    expected = hmac.new(
        KEY, _lp(b"tvote/2/voter-alias") + _lp(EID.encode()) + _lp(b"R-1"), hashlib.sha256
    ).digest()
    assert voter_alias(KEY, EID, "R-1") == expected
    assert voter_alias(KEY, "other-election", "R-1") != expected
    assert voter_alias(bytes(32), EID, "R-1") != expected


def test_roll_entries_and_commitment():
    roll = parse_roll_csv(ROLL.encode(), roll_key=KEY, election_id=EID)
    assert roll.size == 3
    aliases = sorted(voter_alias(KEY, EID, r) for r in ("R-1", "R-2", "R-3"))
    assert [e.alias for e in roll.entries] == aliases
    assert roll.root == root([leaf_hash(a) for a in aliases])
    assert roll.commitment() == {"size": 3, "root": roll.root.hex(), "alias_scheme": "hmac-sha256/1"}
    # the match key is the auth package's, computed with the same roll key (full-width spaces normalised)
    mk = roll_match_key(RollKey(KEY), "筑波\u3000太郎", dt.date(1980, 5, 1), "茨城県つくば市研究学園1-1-1")
    by_alias = {e.alias: e.match_key for e in roll.entries}
    assert by_alias[voter_alias(KEY, EID, "R-1")] == mk.digest


def test_precomputed_match_keys_and_encodings():
    mk = "ab" * 32
    roll = parse_roll_csv(
        f"resident_id,match_key\nR-9,{mk}\n".encode("utf-8-sig"), roll_key=KEY, election_id=EID
    )
    assert roll.entries[0].match_key == bytes.fromhex(mk)
    sjis = ROLL.encode("cp932")
    assert (
        parse_roll_csv(sjis, roll_key=KEY, election_id=EID).root
        == parse_roll_csv(ROLL.encode(), roll_key=KEY, election_id=EID).root
    )


@pytest.mark.parametrize(
    "text",
    [
        "resident_id,my_number,name,birth_date,address\nR-1,x,a,2000-01-01,b\n",
        "resident_id,マイナンバー\nR-1,x\n",
        "resident_id,個人番号,match_key\nR-1,x," + "ab" * 32 + "\n",
        "resident_id,name,birth_date,address\n123456789012,a,2000-01-01,b\n",
        "resident_id,name,birth_date,address\nR-1,a,2000-01-01,1234 5678 9012\n",
        "resident_id,name,birth_date,address\nR-1,a,2000-01-01,１２３４-５６７８-９０１２\n",
    ],
)
def test_my_number_is_refused(text):
    with pytest.raises(RollFileError) as e:
        parse_roll_csv(text.encode(), roll_key=KEY, election_id=EID)
    assert e.value.code == "roll.my_number"
    assert "1234" not in e.value.message  # errors name the place, never the value


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "roll.empty"),
        ("resident_id,name,birth_date,address\n", "roll.empty"),
        ("name,birth_date,address\na,2000-01-01,b\n", "roll.columns"),
        ("resident_id,name\nR-1,a\n", "roll.columns"),
        ("resident_id,name,birth_date,address,phone\nR-1,a,2000-01-01,b,1\n", "roll.columns"),
        ("resident_id,name,birth_date,address\nR-1,a,01/02/2000,b\n", "roll.birth_date"),
        ("resident_id,name,birth_date,address\nR-1,a,2000-01-01\n", "roll.row"),
        ("resident_id,name,birth_date,address\nR-1, ,2000-01-01,b\n", "roll.row"),
        ("resident_id,name,birth_date,address\nR-1,a,2000-01-01,b\nR-1,c,2000-01-01,d\n", "roll.duplicate"),
        ("resident_id,name,birth_date,address\nR-1,a,2000-01-01,b\nR-2,a,2000-01-01,b\n", "roll.duplicate"),
        ("resident_id,match_key\nR-1,xyz\n", "roll.match_key"),
    ],
)
def test_invalid_rolls(text, code):
    with pytest.raises(RollFileError) as e:
        parse_roll_csv(text.encode(), roll_key=KEY, election_id=EID)
    assert e.value.code == code

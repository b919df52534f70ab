"""The demo's synthetic world: the Tsukuba-style manifest, residents with test My Number cards, the roll
file the register exports, stand-in face photos and the development OpenID provider's accounts. NEVER for a
real election (test CA, synthetic people, no biometrics anywhere)."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._faces import booth_liveness_evidence, demo_face_image
from ._testca import JpkiTestCa, RsaKeyPool, TestCard, TestResident

__all__ = [
    "Resident",
    "demo_claims",
    "demo_face_image",
    "demo_live_capture",
    "dev_account",
    "live_capture_of",
    "login_as",
    "make_residents",
    "reference_photo_dir",
    "rfc3339",
    "roll_csv",
    "tsukuba_manifest",
    "write_reference_photos",
]


def _t(ja: str, en: str) -> dict[str, str]:
    return {"ja": ja, "en": en}


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tsukuba_manifest(
    now: dt.datetime,
    *,
    election_id: str = "tsukuba-2027",
    trustees: int = 5,
    threshold: int = 3,
    small: bool = False,
) -> dict[str, Any]:
    """The demo manifest. ``small`` keeps the same three contest kinds with fewer selections (tests)."""
    candidates = [
        ("cand-1", "青木 一郎", "Ichiro Aoki"),
        ("cand-2", "石井 花子", "Hanako Ishii"),
        ("cand-3", "上田 誠", "Makoto Ueda"),
        ("cand-4", "江藤 さくら", "Sakura Eto"),
    ]
    projects = [
        ("proj-1", "研究学園駅前の自転車道", "Cycle lanes at Kenkyu-gakuen station"),
        ("proj-2", "筑波山の登山道整備", "Mount Tsukuba trail repair"),
        ("proj-3", "小学校の図書室改修", "Primary-school library renovation"),
        ("proj-4", "公園の遊具更新", "New playground equipment"),
        ("proj-5", "高齢者向け送迎バス", "Shuttle bus for elderly residents"),
        ("proj-6", "公民館の太陽光発電", "Solar panels on community centres"),
        ("proj-7", "子ども食堂への助成", "Grants for children's cafeterias"),
        ("proj-8", "外国人住民の相談窓口", "Help desk for foreign residents"),
    ]
    if small:
        candidates, projects = candidates[:3], projects[:4]
    return {
        "format": "tvote-manifest/1",
        "election_id": election_id,
        "name": _t(
            "つくば市長選挙・住民投票・市民提案事業 (デモ)", "Tsukuba City election and referendum (demo)"
        ),
        "voting_period": {
            "opens": rfc3339(now - dt.timedelta(hours=1)),
            "closes": rfc3339(now + dt.timedelta(days=7)),
        },
        "contests": [
            {
                "id": "mayor",
                "kind": "one_of_n",
                "min": 0,
                "max": 1,
                "name": _t("つくば市長", "Mayor of Tsukuba"),
                "selections": [{"id": i, "name": _t(ja, en)} for i, ja, en in candidates],
            },
            {
                "id": "referendum",
                "kind": "yes_no",
                "min": 0,
                "max": 1,
                "name": _t("市庁舎移転の是非", "Move the city hall?"),
                "selections": [
                    {"id": "yes", "name": _t("賛成", "Yes")},
                    {"id": "no", "name": _t("反対", "No")},
                ],
            },
            {
                "id": "subsidy",
                "kind": "up_to_k",
                "min": 0,
                "max": 3 if not small else 2,
                "name": _t("市民提案事業 (3件まで)", "Citizen projects (up to 3)"),
                "selections": [{"id": i, "name": _t(ja, en)} for i, ja, en in projects],
            },
        ],
        "trustees": {"n": trustees, "threshold": threshold},
        "revote_rule": "last-internet-kiosk-overrides",
        "auth_methods": ["jpki", "oidc+face"],
    }


# --------------------------------------------------------------------------------------------- residents

_FAMILY = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田"]
_GIVEN = ["翔", "陽菜", "蓮", "結衣", "大翔", "葵", "湊", "凛", "悠真", "芽依", "樹", "美咲"]
_TOWNS = ["天久保", "春日", "竹園", "吾妻", "松代", "並木", "研究学園", "みどりの", "北条", "筑波"]


@dataclass(frozen=True, slots=True)
class Resident:
    """A synthetic resident: register id, basic-four data and a test My Number card."""

    resident_id: str
    person: TestResident
    card: TestCard = field(repr=False)


def make_residents(
    n: int, ca: JpkiTestCa, now: dt.datetime, *, seed: int = 2027, pool: RsaKeyPool | None = None
) -> list[Resident]:
    """``n`` synthetic residents of Tsukuba with test cards (keys drawn from ``pool`` when given)."""
    rnd = random.Random(seed)  # synthetic data only; not security relevant
    out: list[Resident] = []
    for i in range(n):
        name = f"{rnd.choice(_FAMILY)} {rnd.choice(_GIVEN)}{i}"
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=rnd.randrange(0, 365 * 60))
        address = f"茨城県つくば市{rnd.choice(_TOWNS)}{rnd.randint(1, 4)}丁目{rnd.randint(1, 30)}番{i + 1}号"
        person = TestResident(name=name, birth_date=birth, address=address)
        key = pool.key(i) if pool is not None else None
        out.append(Resident(f"R{i + 1:06d}", person, ca.issue_card(person, now, key=key)))
    return out


def roll_csv(residents: Sequence[Resident]) -> bytes:
    """The roll file the register exports (the service hashes the matching data and drops it)."""
    lines = ["resident_id,name,birth_date,address"]
    for r in residents:
        p = r.person
        lines.append(f"{r.resident_id},{p.name},{p.birth_date.isoformat()},{p.address}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def reference_photo_dir(data_dir: Path) -> Path:
    """Where the demo keeps the roll residents' reference photos (``<voter alias hex>.png``)."""
    return data_dir / "reference-photos"


def write_reference_photos(
    directory: Path, roll_key: bytes, election_id: str, residents: Sequence[Resident]
) -> None:
    """What the commission exports once the roll is committed: each roll resident's photo, named by the
    resident's voter alias (it holds the roll key), for ``DirectoryReferencePhotoSource``."""
    from voting._roll import voter_alias

    directory.mkdir(parents=True, exist_ok=True)
    for r in residents:
        alias = voter_alias(roll_key, election_id, r.resident_id)
        (directory / f"{alias.hex()}.png").write_bytes(demo_face_image(r.resident_id))


def dev_account(r: Resident) -> str:
    """The resident's account id at the development provider (not the register's resident id)."""
    return "dev-account-" + hashlib.sha256(r.resident_id.encode()).hexdigest()[:16]


def demo_live_capture(resident: Resident) -> dict[str, str]:
    """The ``face`` object a voter's device sends: the capture and the liveness evidence (hex)."""
    return live_capture_of(resident.resident_id)


def live_capture_of(resident_id: str) -> dict[str, str]:
    """The ``face`` object of a device whose camera sees the resident's synthetic picture
    (:func:`demo_face_image`, PNG): the picture, and liveness evidence in the booth's format with the same
    picture as its second frame."""
    picture = demo_face_image(resident_id)
    return {
        "media_type": "image/png",
        "image": picture.hex(),
        "liveness_evidence": booth_liveness_evidence(picture).hex(),
    }


def demo_claims(r: Resident) -> dict[str, Any]:
    p = r.person
    return {"name": p.name, "birthdate": p.birth_date.isoformat(), "address": {"formatted": p.address}}


def login_as(provider: Any, resident: Resident) -> None:
    """Make the development provider approve ``resident`` on the next login."""
    from ._dev_oidc import DevSubject

    provider.subject = DevSubject(dev_account(resident), demo_claims(resident))

"""Roll inclusion proofs (``roll_proof`` of ``ballot.cast``): the stored roll tree against the list-based
reference of ``ledger.merkle``, and the service's proofs against the published ``roll.commitment`` on
SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, update
from sqlmodel import Session, select

from ledger.merkle import inclusion_proof, leaf_hash, root, verify_inclusion
from voting._db import RollNodeRow
from voting._errors import Conflict, Forbidden, ServiceUnavailable
from voting._roll import roll_proof_from_nodes, roll_tree, voter_alias
from voting._settings import Settings
from voting.service import ElectionService

pytestmark = pytest.mark.xdist_group("roll-proofs")


def _aliases(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return sorted({rng.randbytes(32) for _ in range(n)})


# --- the stored shape against the slow, obviously correct list-based reference ---------------------


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 70), seed=st.integers(0, 2**32))
def test_stored_nodes_give_the_reference_proof_for_every_leaf(n: int, seed: int) -> None:
    aliases = _aliases(n, seed)
    leaves = [leaf_hash(a) for a in aliases]
    tree_root, nodes = roll_tree(aliases)
    assert tree_root == root(leaves)
    stored = {(lv, ix): h for lv, ix, h in nodes}
    assert len(stored) == len(nodes)  # each complete subtree once
    for i, a in enumerate(aliases):
        proof = roll_proof_from_nodes(i, len(aliases), stored)
        assert list(proof.path) == inclusion_proof(i, leaves)
        proof.verify(a, tree_root)


def test_roll_tree_refuses_unsorted_or_repeated_aliases() -> None:
    a, b = b"\x01" * 32, b"\x02" * 32
    with pytest.raises(ValueError):
        roll_tree([b, a])
    with pytest.raises(ValueError):
        roll_tree([a, a])


# --- the service: stored tree, proofs per alias, on both backends -----------------------------------


ROLL_SIZE = 2_500  # not a power of two: the right edge of the tree has incomplete subtrees


def _service(tmp_path: Path, database_url: str | None) -> ElectionService:
    from _service_util import manifest_dict

    settings = Settings(
        environment="test", data_dir=tmp_path / "data", admin_token="t" * 40, database_url=database_url
    )
    service = ElectionService.from_settings(settings)
    service.create_election(manifest_dict(3, 2))
    return service


def _roll_csv(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "resident_id,match_key\n" + "".join(f"R-{k},{rng.randbytes(32).hex()}\n" for k in range(n))


def _published_commitment(service: ElectionService) -> dict[str, object]:
    ledger = service.ledger
    (entry,) = [e for e in ledger.entries(0, ledger.size) if e.type == "roll.commitment"]
    return dict(entry.payload)


def test_every_alias_has_a_proof_against_the_published_commitment(
    tmp_path: Path, database_url: str | None
) -> None:
    service = _service(tmp_path, database_url)
    try:
        with pytest.raises(Conflict):  # no roll yet
            service.roll_proof(b"\x00" * 32)
        service.load_roll(_roll_csv(50, seed=1))  # replaced below: its rows must go
        service.load_roll(_roll_csv(ROLL_SIZE, seed=2))
        aliases = sorted(
            voter_alias(service.roll_key, service.election_id, f"R-{k}") for k in range(ROLL_SIZE)
        )
        with pytest.raises(Conflict) as e:
            service.roll_proof(aliases[0])
        assert e.value.code == "roll.not_committed"
        rng = random.Random(2)  # the match key of R-0, as _roll_csv drew it
        key0 = rng.randbytes(32)
        assert service.lookup_alias(key0) is None  # nobody votes before the commitment (nor is that kept)
        service.publish_roll()
        alias0 = voter_alias(service.roll_key, service.election_id, "R-0")
        assert service.lookup_alias(key0) == alias0
        assert service.lookup_alias(b"\x00" * 32) is None
        c = _published_commitment(service)
        assert c["size"] == ROLL_SIZE
        published_root = bytes.fromhex(str(c["root"]))
        assert published_root == root([leaf_hash(a) for a in aliases])
        with Session(service.engine) as s:  # exactly this roll's tree: the first roll's nodes are gone
            count = s.exec(select(func.count()).select_from(RollNodeRow)).one()
        assert count == len(roll_tree(aliases)[1])

        # the lookup's leaf index serves the roll proof of THAT alias (a cast's next step), and only of it:
        # given for another alias, the proof is checked against the commitment and refused
        other = aliases[0] if aliases[0] != alias0 else aliases[1]
        assert service.lookup_voter(key0) == (alias0, aliases.index(alias0))
        assert service.lookup_voter(b"\x00" * 32) is None
        assert service.roll_proof(alias0, leaf_index=aliases.index(alias0)).index == aliases.index(alias0)
        with pytest.raises(ServiceUnavailable) as wrong:
            service.roll_proof(other, leaf_index=aliases.index(alias0))
        assert wrong.value.code == "roll.integrity"
        for rank, alias in enumerate(aliases):
            proof = service.roll_proof(alias)
            assert proof.index == rank  # the alias's rank: nothing about the resident
            d = proof.to_dict()
            assert set(d) == {"index", "path"}
            verify_inclusion(
                leaf_hash(alias),
                d["index"],
                ROLL_SIZE,
                [bytes.fromhex(h) for h in d["path"]],  # type: ignore[attr-defined]
                published_root,
            )
        leaves = [leaf_hash(a) for a in aliases]
        for rank in (0, 1, 1023, 1024, 2047, 2048, ROLL_SIZE - 2, ROLL_SIZE - 1):
            assert list(service.roll_proof(aliases[rank]).path) == inclusion_proof(rank, leaves)

        with pytest.raises(Forbidden) as e2:
            service.roll_proof(b"\x00" * 32)
        assert e2.value.code == "voter.not_on_roll"
    finally:
        service.close()


def test_a_damaged_stored_tree_is_never_published(tmp_path: Path, database_url: str | None) -> None:
    service = _service(tmp_path, database_url)
    try:
        service.load_roll(_roll_csv(40, seed=3))
        service.publish_roll()
        alias = min(voter_alias(service.roll_key, service.election_id, f"R-{k}") for k in range(40))
        service.roll_proof(alias)
        assert service.reconcile(full=True).problems == ()
        with Session(service.engine) as s:  # leaf 0's sibling, a node of its proof
            s.execute(
                update(RollNodeRow)
                .where(RollNodeRow.level == 0, RollNodeRow.idx == 1)  # type: ignore[arg-type]
                .values(hash=b"\xee" * 32)
            )
            s.commit()
        with pytest.raises(ServiceUnavailable) as e:
            service.roll_proof(alias)
        assert e.value.code == "roll.integrity"
        # reconciliation checks the stored tree's root nodes against the ledger's roll.commitment: for 40
        # leaves they are the subtrees (5, 0) and (3, 4)
        assert service.reconcile(full=True).problems == ()  # a damaged leaf is caught per cast, above
        with Session(service.engine) as s:
            s.execute(
                update(RollNodeRow)
                .where(RollNodeRow.level == 3, RollNodeRow.idx == 4)  # type: ignore[arg-type]
                .values(hash=b"\xee" * 32)
            )
            s.commit()
        with pytest.raises(ServiceUnavailable) as e:
            service.reconcile(full=True)
        assert e.value.code == "reconcile.roll"
    finally:
        service.close()

"""The voter routes get their intake one way (``app.state.intake_provider``), and a test that needs another
intake overrides the ``get_intake`` dependency: every voter route honours it, also those that build the
intake late (after their session limits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _service_util import running_app

from voting._errors import NotFound
from voting.api.voter import get_intake


class _StubIntake:
    """Answers every call with a recognisable error, to show which intake a route used."""

    def issue_challenge(self) -> None:
        raise NotFound("stub.challenge", "the stub intake answered")

    def find(self, tracking_code: str) -> None:
        raise NotFound("stub.find", f"the stub intake answered for {tracking_code}")


def _code(r: Any) -> str:
    return str(r.json()["error"]["code"])


def test_without_an_election_the_provider_answers_election_none(tmp_path: Path) -> None:
    with running_app(tmp_path) as (client, _):
        assert _code(client.post("/api/v1/voter/challenge")) == "election.none"
        assert _code(client.get("/api/v1/voter/ballots/abc")) == "election.none"


def test_a_dependency_override_serves_every_voter_route(tmp_path: Path) -> None:
    with running_app(tmp_path) as (client, _):
        client.app.dependency_overrides[get_intake] = _StubIntake
        assert _code(client.post("/api/v1/voter/challenge")) == "stub.challenge"  # a dependency
        assert _code(client.get("/api/v1/voter/ballots/abc")) == "stub.find"  # built late, in the route
        client.app.dependency_overrides.clear()
        assert _code(client.get("/api/v1/voter/ballots/abc")) == "election.none"

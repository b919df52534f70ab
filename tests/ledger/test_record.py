"""The election record: export, archive, check_record, and tamper evidence with the first bad index."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from _ledger_util import Clock, log_signer, policy, witnesses
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

import ledger
from ledger import Ledger, LedgerConfig
from ledger.record import (
    Entry,
    LogKey,
    LogSigner,
    RecordError,
    SignedCheckpoint,
    check_record,
    check_sequence,
    read_record,
)

N = 12


def _cosign_latest(led: Ledger, signers: int = 2) -> None:
    cp = led.checkpoint()
    for w in witnesses()[:signers]:
        led.add_cosignature(w.name, cp.size, w.cosign(cp.signed.body))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported, witnessed record with 3 checkpoints (built once; tests copy it)."""
    base = tmp_path_factory.mktemp("record")
    with Ledger(f"sqlite:///{base / 'l.db'}", LedgerConfig(log_signer(), policy(2), clock=Clock())) as led:
        led.append_many([("ev", {"i": i, "s": f"v{i}"}) for i in range(5)])
        _cosign_latest(led, 1)
        led.append_many([("ev", {"i": i}) for i in range(5, 9)])
        led.checkpoint()
        led.append_many([("ev", {"i": i}) for i in range(9, N)])
        _cosign_latest(led, 2)
        led.export(base / "rec")
        led.export_archive(base / "rec.tar.gz")
    return base


@pytest.fixture
def rec(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source / "rec", tmp_path / "rec"))


def test_export_checks_and_archive_matches(source: Path) -> None:
    s = check_record(source / "rec")
    assert (s.size, s.checkpoints, s.witnessed_size, s.signers) == (N, 3, N, ("witness-0", "witness-1"))
    assert check_record(source / "rec.tar.gz") == s
    r = read_record(source / "rec")
    assert [e.index for e in r.entries()] == list(range(N))
    assert [c.size for c in r.checkpoints] == [5, 9, N]
    header = json.loads((source / "rec" / "record.json").read_text())
    assert header["format"] == "tvote-election-record" and header["version"] == 3


def _lines(rec: Path) -> list[bytes]:
    return (rec / "entries.jsonl").read_bytes().splitlines(keepends=True)


def _write(rec: Path, lines: list[bytes]) -> None:
    (rec / "entries.jsonl").write_bytes(b"".join(lines))


def _modify(k: int) -> Callable[[list[bytes]], list[bytes]]:
    def f(ls: list[bytes]) -> list[bytes]:
        obj = json.loads(ls[k])
        obj["payload"]["tampered"] = True
        ls[k] = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode() + b"\n"
        return ls

    return f


def _remove(k: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda ls: ls[:k] + ls[k + 1 :]


def _swap(k: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda ls: [*ls[:k], ls[k + 1], ls[k], *ls[k + 2 :]]


def _insert(k: int) -> Callable[[list[bytes]], list[bytes]]:
    def f(ls: list[bytes]) -> list[bytes]:
        from ledger.record import Entry

        prev = Entry.from_bytes(ls[k - 1][:-1]).hash if k else bytes(32)
        forged = Entry.create(k, prev, "ev", {"forged": True}).canonical + b"\n"
        return [*ls[:k], forged, *ls[k:]]

    return f


def _duplicate(k: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda ls: [*ls[: k + 1], ls[k], *ls[k + 1 :]]


@settings(max_examples=25, deadline=None)
@given(op=st.sampled_from(["modify", "remove", "swap", "insert", "duplicate"]), k=st.integers(0, N - 1))
def test_tampering_an_export_is_detected_at_the_first_bad_entry(source: Path, op: str, k: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(shutil.copytree(source / "rec", Path(tmp) / "rec"))
        if op == "swap":
            k = min(k, N - 2)
        if op == "duplicate":
            k = min(k, N - 1)
        make = {
            "modify": _modify,
            "remove": _remove,
            "swap": _swap,
            "insert": _insert,
            "duplicate": _duplicate,
        }[op](k)
        _write(rec, make(_lines(rec)))
        want = k + 1 if op == "duplicate" else k
        with pytest.raises(RecordError) as err:
            check_record(rec)
        assert err.value.index == want, (op, k, err.value)


def test_appended_forged_tail_and_truncation_are_detected(rec: Path) -> None:
    lines = _lines(rec)
    _write(rec, _insert(N)(lines))
    with pytest.raises(RecordError) as err:
        check_record(rec)
    assert err.value.index == N
    _write(rec, lines[:-1])
    with pytest.raises(RecordError) as err:
        check_record(rec)
    assert err.value.index == N - 1


def test_non_canonical_entry_is_detected(rec: Path) -> None:
    lines = _lines(rec)
    lines[4] = json.dumps(json.loads(lines[4])).encode() + b"\n"  # same content, not RFC 8785 bytes
    _write(rec, lines)
    with pytest.raises(RecordError) as err:
        check_record(rec)
    assert (err.value.index, err.value.check) == (4, "entry-format")


def _checkpoint_lines(rec: Path) -> list[dict]:
    return [json.loads(x) for x in (rec / "checkpoints.jsonl").read_text().splitlines()]


def _write_checkpoints(rec: Path, cps: list[dict]) -> None:
    from ledger.record import canonical_json

    (rec / "checkpoints.jsonl").write_bytes(b"".join(canonical_json(c) + b"\n" for c in cps))


def test_checkpoint_forgeries_are_detected(rec: Path) -> None:
    cps = _checkpoint_lines(rec)
    bad_sig = [dict(c) for c in cps]
    bad_sig[1]["note"] = bad_sig[1]["note"].replace("\n9\n", "\n8\n")
    _write_checkpoints(rec, bad_sig)
    with pytest.raises(RecordError, match="checkpoint"):
        check_record(rec)
    no_cosig = [dict(c) for c in cps]
    no_cosig[-1]["cosignatures"] = None
    _write_checkpoints(rec, no_cosig)
    with pytest.raises(RecordError) as err:
        check_record(rec)
    assert err.value.check == "checkpoint-witnessed"
    wrong_signers = [dict(c) for c in cps]
    wrong_signers[-1]["cosignatures"] = {**cps[-1]["cosignatures"], "signers": ["witness-0", "witness-2"]}
    _write_checkpoints(rec, wrong_signers)
    with pytest.raises(RecordError) as err:
        check_record(rec)
    assert err.value.check == "checkpoint-cosignature"
    bad_proof = [dict(c) for c in cps]
    bad_proof[2]["consistency"] = {"from_size": 9, "proof": ["00" * 32] * 3}
    _write_checkpoints(rec, bad_proof)
    with pytest.raises(RecordError) as err:
        check_record(rec)
    assert err.value.check == "checkpoint-consistency"


def test_a_checkpoint_signed_by_another_key_is_refused(rec: Path) -> None:
    cps = _checkpoint_lines(rec)
    other = LogSigner.generate(log_signer().name, b"\x05" * 32)
    from ledger.record import Checkpoint

    cps[0]["note"] = SignedCheckpoint.sign(
        Checkpoint(other.name, 5, bytes.fromhex(cps[0]["root"]), cps[0]["issued_at"]), other
    ).note
    _write_checkpoints(rec, cps)
    with pytest.raises(RecordError) as err:
        check_record(rec)
    assert err.value.check == "checkpoint-signature"


def test_malformed_record_files(rec: Path, tmp_path: Path) -> None:
    (rec / "record.json").write_text('{"format": "something-else"}')
    with pytest.raises(RecordError, match="record"):
        check_record(rec)
    with pytest.raises(RecordError):
        check_record(tmp_path / "missing")
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(RecordError):
        check_record(tmp_path / "junk.tar.gz")


def _tampered_storage(tmp_path: Path, sql: str) -> Ledger:
    led = Ledger(f"sqlite:///{tmp_path / 's.db'}", LedgerConfig(log_signer(), policy(2), clock=Clock()))
    led.append_many([("ev", {"i": i}) for i in range(N)])
    led.checkpoint()
    with led._store.engine.begin() as conn:
        conn.execute(text(sql))
    return led


@pytest.mark.parametrize(
    ("sql", "want"),
    [
        ("UPDATE ledger_entry SET body = (SELECT body FROM ledger_entry WHERE idx = 4) WHERE idx = 7", 7),
        ("UPDATE ledger_entry SET idx = -1 WHERE idx = 3; ", 3),
        ("DELETE FROM ledger_entry WHERE idx = 5", 5),
        ("UPDATE ledger_entry SET body = CAST(replace(body, X'226922', X'226a22') AS BLOB) WHERE idx = 6", 6),
    ],
)
def test_tampering_storage_is_detected(tmp_path: Path, sql: str, want: int) -> None:
    led = _tampered_storage(tmp_path, sql)
    try:
        if sql.startswith("UPDATE ledger_entry SET idx = -1"):
            with led._store.engine.begin() as conn:  # reorder: move 3 after 4
                conn.execute(text("UPDATE ledger_entry SET idx = 3 WHERE idx = 4"))
                conn.execute(text("UPDATE ledger_entry SET idx = 4 WHERE idx = -1"))
        with pytest.raises(RecordError) as err:
            led.check()
        assert err.value.index == want, err.value
    finally:
        led.close()


def test_storage_check_passes_on_an_honest_live_log(tmp_path: Path) -> None:
    with Ledger(f"sqlite:///{tmp_path / 'h.db'}", LedgerConfig(log_signer(), policy(2))) as led:
        led.append_many([("ev", {"i": i}) for i in range(7)])
        led.checkpoint()
        led.append("ev", {"tail": "not yet checkpointed"})
        s = led.check()
        assert s.size == 7


@settings(max_examples=20, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), name=st.from_regex(r"[a-z0-9./-]{1,30}", fullmatch=True))
def test_log_keys_round_trip_through_text(seed: bytes, name: str) -> None:
    s = LogSigner.generate(name, seed)
    assert LogKey.from_vkey(s.public.vkey) == s.public
    assert LogSigner.from_skey(s.skey) == s


def test_errors_are_one_tree() -> None:
    assert issubclass(RecordError, ledger.VerificationError)
    assert issubclass(ledger.ForkError, ledger.WitnessRefusal)
    assert all(
        issubclass(getattr(ledger, n), ledger.LedgerError)
        for n in ledger.__all__
        if n.endswith("Error") or n in {"InvalidEntry", "InvalidEncoding", "NotFound", "WitnessRefusal"}
    )


def test_vkey_whose_base64_contains_plus_round_trips() -> None:
    """Regression: the verifier-key parser once split the base64 part on '+' (reported by the client team)."""
    from nacl.signing import SigningKey

    from ledger.record import LogKey

    for i in range(256):
        key = LogKey("tsukuba.example/log", bytes(SigningKey(bytes([i]) * 32).verify_key))
        if "+" in key.vkey.split("+", 2)[2]:
            break
    else:  # pragma: no cover - 256 keys without '+' in base64 is vanishingly unlikely
        raise AssertionError("no key with '+' in its base64 form found")
    assert LogKey.from_vkey(key.vkey) == key


# --- signed checkpoint time (issue 3) ---------------------------------------------------------------


def _resign(cps: list[dict], k: int, time: int) -> None:
    from ledger.record import Checkpoint

    cps[k]["note"] = SignedCheckpoint.sign(
        Checkpoint(log_signer().name, cps[k]["size"], bytes.fromhex(cps[k]["root"]), time), log_signer()
    ).note
    cps[k]["issued_at"] = time


def test_issued_at_is_the_signed_time_and_a_change_is_detected(rec: Path) -> None:
    cps = _checkpoint_lines(rec)
    for c in cps:
        assert f"\ntime {c['issued_at']}\n" in c["note"]
    changed = [dict(c) for c in cps]
    changed[1]["issued_at"] += 1
    _write_checkpoints(rec, changed)
    with pytest.raises(RecordError) as err:
        check_record(rec)
    assert err.value.check == "checkpoint-fields"


def test_signed_times_must_not_decrease(rec: Path) -> None:
    cps = _checkpoint_lines(rec)
    _resign(cps, 1, cps[0]["issued_at"] - 1)  # validly signed by the log, but earlier than its predecessor
    _write_checkpoints(rec, cps)
    with pytest.raises(RecordError) as err:
        check_record(rec)
    assert err.value.check == "checkpoint-order"
    assert cps[1]["cosignatures"] is None  # so re-signing it needs no witness
    _resign(cps, 1, cps[0]["issued_at"])  # equal times are allowed
    _write_checkpoints(rec, cps)
    assert check_record(rec).checkpoints == 3


def test_ledger_times_never_decrease_even_if_the_clock_does(tmp_path: Path) -> None:
    clock = Clock(2_000_000_000)
    with Ledger(f"sqlite:///{tmp_path / 't.db'}", LedgerConfig(log_signer(), policy(1), clock=clock)) as led:
        led.append("ev", {"i": 0})
        first = led.checkpoint()
        clock.now -= 3600  # the wall clock is set back
        led.append("ev", {"i": 1})
        second = led.checkpoint()
        assert (first.issued_at, second.issued_at) == (2_000_000_000, 2_000_000_000)
        clock.now += 7200
        led.append("ev", {"i": 2})
        third = led.checkpoint()
        assert third.issued_at == 2_000_003_600
        w = witnesses()[0]
        led.add_cosignature(w.name, 3, w.cosign(third.signed.body))  # the witness signs the time too
        led.export(tmp_path / "rec")
    assert check_record(tmp_path / "rec").size == 3


@pytest.mark.parametrize(
    "body",
    [
        "o\n1\n" + "A" * 43 + "=\n",  # no time line (format version 1)
        "o\n1\n" + "A" * 43 + "=\ntime 01\n",  # leading zero
        "o\n1\n" + "A" * 43 + "=\ntime -1\n",
        "o\n1\n" + "A" * 43 + "=\ntimestamp 1\n",
        "o\n1\n" + "A" * 43 + "=\ntime 1\nextra\n",  # unknown extension line
        "o\n1\n" + "A" * 43 + "=\ntime 9223372036854775808\n",  # 2^63
    ],
)
def test_checkpoint_bodies_without_exactly_one_time_line_are_refused(body: str) -> None:
    from ledger.record import Checkpoint, InvalidEncoding

    with pytest.raises(InvalidEncoding):
        Checkpoint.from_body(body)


def test_checkpoint_body_round_trips() -> None:
    from ledger.record import Checkpoint

    cp = Checkpoint("o", 7, bytes(range(32)), 1_800_000_123)
    assert cp.body().endswith("\ntime 1800000123\n")
    assert Checkpoint.from_body(cp.body()) == cp


# --- bounded memory (issue 5) -----------------------------------------------------------------------


def _synthetic_record(directory: Path, n: int) -> Path:
    """A valid record of ``n`` tiny entries written straight in the record format (no database)."""
    import hashlib

    from ledger.merkle import root
    from ledger.record import Checkpoint, CheckpointRecord, RecordHeader, RecordWriter, WitnessPolicy

    hashes = []
    prev = bytes(32)
    with RecordWriter(directory) as w:
        for i in range(n):
            line = b'{"index":%d,"payload":{"i":%d},"prev":"%s","type":"ev","version":1}' % (
                i,
                i,
                prev.hex().encode(),
            )
            prev = hashlib.sha256(b"\x00" + line).digest()
            hashes.append(prev)
            w.add_entry(line)
        r = root(hashes)
        note = SignedCheckpoint.sign(Checkpoint(log_signer().name, n, r, 1_800_000_000), log_signer()).note
        header = RecordHeader(log_signer().public, WitnessPolicy((), 0), n, 1)
        w.seal(header, [CheckpointRecord(n, r, note, 1_800_000_000)])
    return directory


@pytest.mark.slow  # ~8 s: tracemalloc slows the 55k-line stream about fivefold
def test_check_record_memory_does_not_grow_with_the_number_of_entries(tmp_path: Path) -> None:
    """Issue 5: the record check streams entries.jsonl with O(log n) state (tracemalloc peak, not time).

    tracemalloc counts every Python allocation, so the sizes need not be large: 45,000 more entries cost
    about 3 MiB if the check kept one 32-byte hash per entry (a bytes object and its list slot, ~73 bytes),
    1.5 MiB for one small int per entry, and 6 MiB if it read the whole file; the margin below is 512 KiB."""
    import gc
    import tracemalloc

    small, large = 5_000, 50_000
    peaks = {}
    for n in (small, large):
        rec = _synthetic_record(tmp_path / f"r{n}", n)
        gc.collect()
        tracemalloc.start()
        try:
            summary = check_record(rec)
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert summary.size == n
        shutil.rmtree(rec)
    assert peaks[large] < 16 * 2**20, peaks
    # ten times the entries, and the peak stays flat
    assert peaks[large] < peaks[small] + 2**19, peaks


_KEYS = st.text(
    alphabet=st.sampled_from(["a", "b", "é", "\u3042", "\ue000", "\uffff", "\U0001f600", "\U00010000"]),
    max_size=4,
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53 - 1), 2**53 - 1)
    | st.text(st.characters(codec=None, exclude_categories=()), max_size=12),  # includes lone surrogates
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=st.dictionaries(_KEYS, _JSON, max_size=5))
def test_fast_canonical_json_agrees_with_the_rfc8785_reference(value: dict) -> None:
    """The C-encoder fast path used by the record check equals the pure-Python RFC 8785 reference."""
    from ledger.record import canonical_json
    from ledger.record._entry import canonical_json_checked

    try:
        want = canonical_json(value)
    except ledger.InvalidEntry:
        with pytest.raises(ledger.InvalidEntry):
            canonical_json_checked(value)
        return
    assert canonical_json_checked(value) == want


@settings(max_examples=200, deadline=None)
@given(
    value=st.dictionaries(_KEYS, _JSON, max_size=5),
    index=st.integers(0, 2**53 - 1),
    prev=st.binary(min_size=32, max_size=32),
    event_type=st.from_regex(r"[a-z0-9][a-z0-9.-]{0,63}", fullmatch=True),
)
def test_an_entry_built_around_its_payloads_bytes_is_the_reference_entry(
    value: dict, index: int, prev: bytes, event_type: str
) -> None:
    """The sequencer builds an entry around the payload's canonical bytes it made to check the size (the
    payload is serialised once): byte for byte the RFC 8785 reference of the whole entry object."""
    from ledger.record import canonical_json
    from ledger.record._entry import ENTRY_VERSION, canonical_json_checked, check_payload

    try:
        body = check_payload(value)
    except ledger.InvalidEntry:
        return
    entry = Entry._of_canonical_payload(index, prev, event_type, canonical_json_checked(body))
    obj = {"index": index, "payload": body, "prev": prev.hex(), "type": event_type, "version": ENTRY_VERSION}
    assert entry.canonical == canonical_json(obj)
    assert entry == Entry.create(index, prev, event_type, value) == Entry.from_bytes(entry.canonical)


def test_utf16_key_order_is_enforced_on_entries() -> None:
    """RFC 8785 orders keys by UTF-16 code units: U+1F600 (surrogates D83D...) sorts before U+E000."""
    from ledger.record import Entry, InvalidEncoding

    e = Entry.create(0, bytes(32), "ev", {"\ue000": 1, "\U0001f600": 2})
    assert e.canonical.index("\U0001f600".encode()) < e.canonical.index("\ue000".encode())
    assert Entry.from_bytes(e.canonical) == e
    code_point_order = e.canonical.replace(
        '"\U0001f600":2,"\ue000":1'.encode(), '"\ue000":1,"\U0001f600":2'.encode()
    )
    assert code_point_order != e.canonical
    with pytest.raises(InvalidEncoding, match="canonical"):
        Entry.from_bytes(code_point_order)


def _entry_text(payload_json: str) -> bytes:
    tail = ',"prev":"' + "00" * 32 + '","type":"ev","version":1}'
    return ('{"index":0,"payload":' + payload_json + tail).encode()


@pytest.mark.parametrize(
    ("payload_json", "accepted"),
    [
        ('{"x":9007199254740991}', True),
        ('{"x":-9007199254740991}', True),
        ('{"x":9007199254740992}', False),  # 2^53: outside the safe range
        ('{"x":-9007199254740992}', False),
        ('{"x":1.0}', False),
        ('{"x":1e3}', False),
        ('{"x":NaN}', False),
        # nesting: the payload at depth 1 of _check_value, its values one deeper; the limit is MAX_DEPTH (64)
        ('{"x":' + "[" * 62 + "1" + "]" * 62 + "}", True),  # the integer at depth 64
        ('{"x":' + "[" * 63 + "1" + "]" * 63 + "}", False),  # at depth 65
        ('{"x":' + "[" * 63 + "]" * 63 + "}", True),  # the innermost (empty) array at depth 64
        ('{"x":' + "[" * 64 + "]" * 64 + "}", False),
    ],
)
def test_entry_decoding_refuses_what_payload_rules_refuse(payload_json: str, accepted: bool) -> None:
    """Entry.from_bytes checks a stored entry's payload by the rules of check_payload (the walk it skips
    below the nesting limit is replaced by the decoder's own refusals): both agree on each case."""
    from ledger.record import Entry, InvalidEncoding
    from ledger.record._entry import check_payload

    data = _entry_text(payload_json)
    try:
        check_payload(json.loads(payload_json, parse_constant=float))
        reference = True
    except ledger.InvalidEntry:
        reference = False
    except ValueError:  # NaN: refused by canonical_json
        reference = False
    assert reference is accepted
    if accepted:
        assert Entry.from_bytes(data).index == 0
    else:
        with pytest.raises(InvalidEncoding):
            Entry.from_bytes(data)


@settings(max_examples=40, deadline=None)
@given(
    op=st.sampled_from(["none", "modify", "remove", "swap", "insert", "duplicate"]),
    k=st.integers(0, N - 1),
    cuts=st.lists(st.integers(0, N + 1), max_size=4),
)
def test_extend_with_line_facts_is_check_sequence(source: Path, op: str, k: int, cuts: list[int]) -> None:
    """A check spread over processes (each line's line_facts computed anywhere, fed in chunks to one
    EntryStream by extend, which skips the window for entries that chain) fails or passes exactly as
    check_sequence over the whole file, whatever the chunks."""
    from itertools import pairwise

    from ledger.record import EntryStream, line_facts

    rec = read_record(source / "rec")
    lines = _lines(source / "rec")
    if op != "none":
        k = min(k, N - 2) if op == "swap" else k
        ops = {"modify": _modify, "remove": _remove, "swap": _swap, "insert": _insert}
        lines = {**ops, "duplicate": _duplicate}[op](k)(lines)

    def outcome(run: Callable[[], object]) -> object:
        try:
            return run()
        except RecordError as e:
            return (e.check, e.index, str(e))

    want = outcome(lambda: check_sequence(rec.header, lines, rec.checkpoints))
    facts = [line_facts(line)[0] for line in lines]
    bounds = [0, *sorted(min(c, len(facts)) for c in cuts), len(facts)]

    def spread() -> object:
        stream = EntryStream(cp.size for cp in rec.checkpoints)
        for a, b in pairwise(bounds):
            stream.extend(facts[a:b])
        return stream.summary(rec.header, rec.checkpoints)

    assert outcome(spread) == want

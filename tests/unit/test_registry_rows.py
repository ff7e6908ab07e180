"""The registry row of a presence record (store_registry.row_of): what the persister keeps
of an agent, read defensively."""

from __future__ import annotations

from scitex_orochi.hub.store_registry import MAX_PROFILE_CHARS, row_of


def test_a_record_becomes_its_profile_with_first_and_last_seen():
    row = row_of(
        {
            "name": "healer",
            "ws": "default",
            "since": 100.0,
            "last_seen": 160.0,
            "machine": "m1",
            "role": "r" * (MAX_PROFILE_CHARS + 50),
            "model": 7,  # not a string: left out
            "current_task": "triage",
            "channels": ["#ops"],
        },
        now=999.0,
    )
    assert row is not None
    assert row["profile"] == {"machine": "m1", "role": "r" * MAX_PROFILE_CHARS}
    assert (row["first_seen"], row["last_seen"], row["last_task"]) == (100.0, 160.0, "triage")
    assert (row["workspace_id"], row["name"]) == ("default", "healer")


def test_one_shot_clients_and_records_without_a_name_are_not_agents_of_the_fleet():
    assert row_of({"name": "cli-1", "ws": "default", "transient": True}, now=1.0) is None
    assert row_of({"ws": "default"}, now=1.0) is None
    assert row_of({"name": "x", "ws": ""}, now=1.0) is None
    odd = row_of({"name": "x", "ws": "w", "since": True, "last_seen": "soon"}, now=5.0)
    assert odd is not None and odd["first_seen"] == odd["last_seen"] == 5.0


def _diagnosis_body(updates, **over):
    body = {
        "origin": "http-1",
        "ws": "default",
        "frame": {"id": "d1", "payload": {"updates": updates}},
    }
    body.update(over)
    return body


def test_a_diagnosis_in_item_is_checked_again_by_the_persister():
    import pytest

    from persister.rows import MAX_DIAGNOSES, InvalidInbound, parse_diagnosis

    ok = parse_diagnosis(
        _diagnosis_body([{"agent": "a", "status": "stuck_prompt", "at": 5, "source": "healer"}])
    )
    assert ok.updates == [
        {
            "agent": "a",
            "at": 5.0,
            "status": "stuck_prompt",
            "reason": "",
            "source": "healer",
            "by": "",
        }
    ]
    bad = [
        _diagnosis_body([]),
        _diagnosis_body([{"agent": "a", "status": "x", "at": 1}] * (MAX_DIAGNOSES + 1)),
        _diagnosis_body([{"agent": "a", "status": "x"}]),  # no time
        _diagnosis_body([{"agent": "a", "status": "x", "at": True}]),
        _diagnosis_body([{"agent": "", "status": "x", "at": 1}]),
        _diagnosis_body([{"agent": "a", "status": "x", "at": 1, "reason": "r" * 2001}]),
        _diagnosis_body([{"agent": "a", "status": "x", "at": 1, "source": 7}]),
        _diagnosis_body([{"agent": "a", "status": "x", "at": 1}], ws=""),
        _diagnosis_body("not a list"),
        {"origin": "x"},
    ]
    for body in bad:
        with pytest.raises(InvalidInbound):
            parse_diagnosis(body)


def test_a_diagnosis_is_kept_on_the_entry_and_makes_one_for_an_unknown_agent(tmp_path):
    from scitex_orochi.hub import store_registry
    from scitex_orochi.hub.store import Store

    store = Store(f"sqlite:///{tmp_path}/r.db")
    store.migrate()
    with store.write_tx() as conn:
        store_registry.upsert(conn, [row_of({"name": "known", "ws": "w", "since": 1.0}, now=2.0)])
        assert store_registry.diagnose(
            conn, "w", "known", {"status": "stuck_prompt", "at": 3.0}, 3.0
        )
        assert not store_registry.diagnose(
            conn, "w", "new", {"status": "remediating", "at": 4.0}, 4.0
        )
    found = store.diagnoses("w")
    assert found == {
        ("w", "known"): {"status": "stuck_prompt", "at": 3.0},
        ("w", "new"): {"status": "remediating", "at": 4.0},
    }
    assert store.diagnoses("other") == {}
    with store.write_tx() as conn:  # later presence keeps the diagnosis
        store_registry.upsert(conn, [row_of({"name": "known", "ws": "w", "since": 1.0}, now=9.0)])
    assert store.diagnoses("w")[("w", "known")]["status"] == "stuck_prompt"


def test_random_diagnosis_bodies_parse_or_are_refused_never_crash():
    import random

    import pytest

    from persister.rows import InvalidInbound, parse_diagnosis

    rng = random.Random(13)
    atoms = [None, True, 0, 1.5, -1, "", "a", "x" * 300, [], {}, [1], {"a": 1}]

    def value(depth: int = 0):
        if depth < 2 and rng.random() < 0.3:
            keys = ["agent", "status", "at", "reason", "source", "by", "frame", "payload"]
            return {rng.choice(keys): value(depth + 1) for _ in range(rng.randint(0, 4))}
        return rng.choice(atoms)

    parsed = refused = 0
    for _ in range(2000):
        update = {k: value(1) for k in ("agent", "status", "at", "reason") if rng.random() < 0.8}
        if rng.random() < 0.5:
            update.update(agent="a", status="ok", at=1.0)
        body = _diagnosis_body([update] if rng.random() < 0.8 else value(1))
        if rng.random() < 0.1:
            body = value()
        try:
            diagnosis = parse_diagnosis(body)
        except InvalidInbound:
            refused += 1
            continue
        parsed += 1
        for u in diagnosis.updates:
            assert isinstance(u["agent"], str) and isinstance(u["at"], float)
            assert all(isinstance(u[k], str) for k in ("status", "reason", "source", "by"))
    assert parsed and refused
    with pytest.raises(InvalidInbound):
        parse_diagnosis(None)

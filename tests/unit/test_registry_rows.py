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

"""Presence replica: who is online, where, in which channels, kept from bus deltas and snapshots.

Pure: callers pass `now` (epoch seconds) and publish or forward the changes it
returns. Each gateway owns its agents and sends deltas plus periodic snapshots;
a gateway whose snapshots stop for `expiry_s` has all its agents dropped. For a
name held on two gateways, the record with the later `(since, gw)` wins.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from scitex_orochi.hub.bus_bodies import AgentRecord, PresenceDelta

Record = AgentRecord
Key = tuple[str, str]  # (workspace, name)
SHARED_STR_MAX = 64


def _shared(value: Any) -> Any:
    if type(value) is str and len(value) <= SHARED_STR_MAX:
        return sys.intern(value)
    if type(value) is dict:
        return {sys.intern(k) if type(k) is str else k: _shared(v) for k, v in value.items()}
    if type(value) is list:
        return [_shared(v) for v in value]
    return value


def compact(record: Record) -> Record:
    """The record with its keys and short strings interned. Records arrive decoded
    from the bus with fresh copies of every key and of values most agents share
    (workspace, gateway, machine, role, channel names): a replica of thousands of
    agents holds one copy of each instead."""
    shared: Record = _shared(record)
    return shared


@dataclass(frozen=True)
class Change:
    event: str  # "connected" | "disconnected" | "updated"
    record: Record


def _rank(record: Record) -> tuple[float, str]:
    return (float(record.get("since") or 0.0), str(record.get("gw") or ""))


@dataclass
class PresenceReplica:
    expiry_s: float
    agents: dict[Key, Record] = field(default_factory=dict)
    gateway_seen: dict[str, float] = field(default_factory=dict)

    def upsert(self, record: Record, now: float) -> list[Change]:
        """A connected/updated record. Ignored if an existing record of that name outranks it."""
        key = (record["ws"], record["name"])
        self.gateway_seen.setdefault(record["gw"], now)
        current = self.agents.get(key)
        if current is None:
            self.agents[key] = record
            return [Change("connected", record)]
        if current.get("conn") == record.get("conn"):
            self.agents[key] = record
            return [Change("updated", record)]
        if _rank(record) >= _rank(current):
            self.agents[key] = record
            return [Change("disconnected", current), Change("connected", record)]
        return []

    def remove(self, record: Record) -> list[Change]:
        """A disconnect removes the entry only if it is the same connection."""
        key = (record["ws"], record["name"])
        current = self.agents.get(key)
        if current is not None and current.get("conn") == record.get("conn"):
            del self.agents[key]
            return [Change("disconnected", current)]
        return []

    def apply_delta(self, body: PresenceDelta, now: float) -> list[Change]:
        event, record = body.get("event"), body.get("agent")
        if not isinstance(record, dict) or "ws" not in record or "name" not in record:
            return []
        record = body["agent"] = compact(record)  # callers read the stored one back
        record.setdefault("gw", body.get("gw", ""))
        self.gateway_seen[record["gw"]] = now
        if event == "disconnected":
            return self.remove(record)
        return self.upsert(record, now)

    def apply_snapshot(self, gw: str, records: list[Record], now: float) -> list[Change]:
        """Replace everything known of `gw` by its snapshot."""
        self.gateway_seen[gw] = now
        changes: list[Change] = []
        listed = set()
        for record in map(compact, records):
            record.setdefault("gw", gw)
            listed.add((record["ws"], record["name"], record.get("conn")))
            current = self.agents.get((record["ws"], record["name"]))
            if current is None or current.get("conn") != record.get("conn"):
                changes.extend(self.upsert(record, now))
            else:
                self.agents[(record["ws"], record["name"])] = record
        for key, current in list(self.agents.items()):
            if current.get("gw") == gw and (key[0], key[1], current.get("conn")) not in listed:
                del self.agents[key]
                changes.append(Change("disconnected", current))
        return changes

    def drop_gateway(self, gw: str) -> list[Change]:
        self.gateway_seen.pop(gw, None)
        changes = []
        for key, current in list(self.agents.items()):
            if current.get("gw") == gw:
                del self.agents[key]
                changes.append(Change("disconnected", current))
        return changes

    def expire(self, now: float, keep: str | None = None) -> list[Change]:
        """Drop gateways (other than `keep`) whose last snapshot is older than expiry_s."""
        changes: list[Change] = []
        for gw, seen in list(self.gateway_seen.items()):
            if gw != keep and now - seen > self.expiry_s:
                changes.extend(self.drop_gateway(gw))
        return changes

    def records(self, workspace: str | None = None) -> list[Record]:
        return [
            r for (owner, _), r in self.agents.items() if workspace is None or owner == workspace
        ]

    def get(self, workspace: str, name: str) -> Record | None:
        return self.agents.get((workspace, name))

    def channel_map(self, workspace: str) -> dict[str, list[str]]:
        """The `presence` reply shape: {name: [channels]}."""
        return {r["name"]: list(r.get("channels") or []) for r in self.records(workspace)}

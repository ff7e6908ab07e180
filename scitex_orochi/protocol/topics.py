"""Topic grammar of the internal bus.

Every topic ends with TERMINATOR so that a subscription to a full topic never
matches a longer one (ZeroMQ filters are byte prefixes: `#gen` matches
`#general`). Subscribers to a whole family use the family prefix (`dlv.`).
"""

from __future__ import annotations

TERMINATOR = "|"

# Families (subscription prefixes).
INBOUND = b"in."  # gateways -> persister: messages to store
DELIVER = b"dlv."  # persister -> gateways: stored messages, with seq
ACK = b"ack."  # persister -> the originating gateway: durable acks
PRESENCE = b"pres."  # gateways -> everyone: presence/status/heartbeat deltas
SNAPSHOT = b"snap|"  # gateways -> everyone: full presence snapshot of one gateway
CONTROL = b"ctl."  # control events (sync requests, shutdown notices)
PROBE = b"probe."  # readiness probes: a process hears its own probe
RPC = b"rpc."  # requests to a named service
REPLY = b"rep."  # replies to one requester

SYNC_REQUEST = b"ctl.sync|"
STOP = b"ctl.stop|"  # a gateway is stopping: drop its agents now
PERSISTER_READY = b"ctl.persister|"  # a persister (re)started: republish what is unacked
REVOKE = b"ctl.revoke|"  # tokens or a workspace were deleted: close their sessions
AUTH_CHANGED = b"ctl.auth|"  # a workspace's policies changed: forget cached token lookups
KICK = b"ctl.kick|"  # an operator kicked agents: their gateways close them (4005)


def _topic(family: bytes, *parts: str) -> bytes:
    return family + ".".join(parts).encode() + TERMINATOR.encode()


def inbound(workspace: str) -> bytes:
    return _topic(INBOUND, workspace)


# A DM channel's name holds the terminator (`dm:agent:a|agent:b`): in a topic it is
# spelled with a control character, which no channel name may hold.
_CHANNEL_BAR = str.maketrans({TERMINATOR: "\x1f"})


def deliver(workspace: str, channel: str) -> bytes:
    return _topic(DELIVER, workspace, channel.translate(_CHANNEL_BAR))


def ack(origin: str) -> bytes:
    return _topic(ACK, origin)


def presence(workspace: str) -> bytes:
    return _topic(PRESENCE, workspace)


def probe(nonce: str) -> bytes:
    return _topic(PROBE, nonce)


def rpc(service: str) -> bytes:
    return _topic(RPC, service)


def reply(origin: str) -> bytes:
    return _topic(REPLY, origin)


def family(topic: bytes) -> bytes:
    """The family prefix of a topic (`b"dlv."`), or the whole topic for singletons."""
    if topic == SNAPSHOT:
        return SNAPSHOT
    dot = topic.find(b".")
    return topic[: dot + 1] if dot >= 0 else topic

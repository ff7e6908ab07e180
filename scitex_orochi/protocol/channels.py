"""Channel names with a meaning of their own: internal channels.

A channel whose name starts with `#.` (e.g. `#.doctor`, where `scitex-orochi
doctor` proves the message path) is stored, sequenced, acked and delivered to its
subscribers like any other, but never listed: not in `/api/channels`,
`/api/channels/summary`, `/api/stats` or `/api/messages`, and not sent to the
dashboard's observers.
"""

from __future__ import annotations

INTERNAL_PREFIX = "#."
DOCTOR_CHANNEL = "#.doctor"


def is_internal(channel: object) -> bool:
    return isinstance(channel, str) and channel.startswith(INTERNAL_PREFIX)

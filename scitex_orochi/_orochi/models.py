"""`orochi.models` (0.1.0): the message record, now `scitex_orochi.client.core.Message`.

It has the 0.1.0 attributes (`type`, `sender`, `payload`, `id`, `ts`, `channel`,
`content`, `mentions`) and more (`seq`, `metadata`, `attachments`).
"""

from __future__ import annotations

from scitex_orochi.client.core import Message
from scitex_orochi.protocol.mentions import MENTION_RE

__all__ = ["MENTION_RE", "Message"]

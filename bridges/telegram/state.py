"""The Telegram bridge's outbound progress, kept in one small JSON file written atomically.

For the bridge channel it records the last hub `seq` fully sent and how many
Bot API calls of the next message already succeeded, so a restart resumes
exactly where the last run stopped: nothing is sent twice, nothing is skipped.
It also remembers which Telegram message carried recent hub messages, for replies.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

log = logging.getLogger("orochi.telegram.state")

SENT_MAP_MAX = 2000


class OutboundState:
    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key
        self.seq: int | None = None  # None: never ran for this channel
        self.part = 0
        self.sent: OrderedDict[str, int] = OrderedDict()
        self._others: dict[str, Any] = {}

    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except ValueError:
            log.error(
                "state file %s is corrupt; starting from the current end of the channel", self.path
            )
            return
        channels = data.get("channels") or {}
        mine = channels.pop(self.key, None)
        self._others = channels
        if isinstance(mine, dict) and isinstance(mine.get("seq"), int):
            self.seq = mine["seq"]
            self.part = int(mine.get("part") or 0)
        for hub_id, tg_id in (data.get("sent") or {}).items():
            if isinstance(tg_id, int):
                self.sent[hub_id] = tg_id

    def save(self) -> None:
        channels = dict(self._others)
        channels[self.key] = {"seq": self.seq or 0, "part": self.part}
        text = json.dumps({"channels": channels, "sent": dict(self.sent)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def part_done(self, count: int) -> None:
        self.part = count
        self.save()

    def message_done(self, seq: int) -> None:
        self.seq = seq
        self.part = 0
        self.save()

    def remember(self, hub_id: str, telegram_id: int) -> None:
        self.sent[hub_id] = telegram_id
        while len(self.sent) > SENT_MAP_MAX:
            self.sent.popitem(last=False)

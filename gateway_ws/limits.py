"""What one client may hold and send on this gateway: connection counts and rate limits.

Pure bookkeeping (callers pass the clock). Connections are counted per client
address, per token and in all; messages go through a token bucket per
connection and one per workspace, other frames through a bucket per connection.
Limits are per gateway process: with `--ws-procs N`, a workspace may send up to
N times its rate in all (documented in docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from scitex_orochi.hub.config import Config
from scitex_orochi.hub.ratelimit import BucketMap, TokenBucket

# A rate-limited connection is not read again for a while: a flood is slowed by TCP
# back-pressure instead of answered frame by frame (at most 1 / MIN_READ_PAUSE_S
# refusals per second). Short pauses keep what a flooder gets through smooth: a
# quarter-second pause let 50 frames through back to back, which showed as latency
# spikes in other workspaces (bench `noisy`: p99 x1.9 at 0.25 s, x1.1-1.5 at 0.05 s).
MIN_READ_PAUSE_S = 0.05
MAX_READ_PAUSE_S = 1.0


def read_pause(wait_s: float) -> float:
    """How long not to read a connection whose frame was refused for `wait_s`."""
    return min(max(wait_s, MIN_READ_PAUSE_S), MAX_READ_PAUSE_S)


@dataclass(slots=True)
class ConnBuckets:
    messages: TokenBucket
    frames: TokenBucket


class Limits:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.by_addr: dict[str, int] = {}
        self.by_token: dict[str, int] = {}
        self.total = 0
        self.workspaces = BucketMap(cfg.ws.workspace_msg_rate_per_s, cfg.ws.workspace_msg_burst)

    # ---- connections ---------------------------------------------------------------
    def refuse_address(self, addr: str) -> str | None:
        """Why a new connection from `addr` is refused at the handshake, or None."""
        if self.total >= self.cfg.ws.max_connections:
            return f"this gateway holds {self.total} connections (SCITEX_OROCHI_MAX_CONNECTIONS)"
        if self.by_addr.get(addr, 0) >= self.cfg.ws.max_connections_per_addr:
            return (
                f"{self.cfg.ws.max_connections_per_addr} connections from {addr} already "
                "(SCITEX_OROCHI_MAX_CONNECTIONS_PER_ADDR)"
            )
        return None

    def refuse_token(self, token: str) -> str | None:
        if self.by_token.get(token, 0) >= self.cfg.ws.max_connections_per_token:
            return (
                f"{self.cfg.ws.max_connections_per_token} connections with this token "
                "already (SCITEX_OROCHI_MAX_CONNECTIONS_PER_TOKEN)"
            )
        return None

    def opened(self, addr: str, token: str) -> None:
        self.total += 1
        self.by_addr[addr] = self.by_addr.get(addr, 0) + 1
        self.by_token[token] = self.by_token.get(token, 0) + 1

    def closed(self, addr: str, token: str) -> None:
        self.total -= 1
        for counts, key in ((self.by_addr, addr), (self.by_token, token)):
            left = counts.get(key, 0) - 1
            if left > 0:
                counts[key] = left
            else:
                counts.pop(key, None)

    # ---- rates -----------------------------------------------------------------------
    def buckets(self, now: float) -> ConnBuckets:
        cfg = self.cfg
        return ConnBuckets(
            TokenBucket(cfg.ws.msg_rate_per_s, cfg.ws.msg_burst, now),
            TokenBucket(cfg.ws.frame_rate_per_s, cfg.ws.frame_burst, now),
        )

    def check(
        self, own: ConnBuckets, workspace: str, is_message: bool, now: float
    ) -> tuple[float, str]:
        """(retry_after_s, which limit) for one frame; (0.0, "") when it may go ahead."""
        if not is_message:
            return own.frames.take(now), "frames per connection"
        wait = own.messages.wait_s(now)
        if wait:
            return wait, "messages per connection"
        wait = self.workspaces.get(workspace, now).take(now)
        if wait:
            return wait, "messages per workspace"
        own.messages.take(now)
        return 0.0, ""

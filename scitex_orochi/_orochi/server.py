"""`python -m orochi.server` (0.1.0): runs the hub, as `scitex-orochi serve` does."""

from __future__ import annotations

from scitex_orochi.cli.serve import server_main

__all__ = ["server_main"]

if __name__ == "__main__":
    server_main()

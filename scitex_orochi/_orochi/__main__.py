"""`python -m orochi`: runs the hub, as `scitex-orochi serve` does."""

from __future__ import annotations

from scitex_orochi.cli.serve import server_main

server_main()

"""The `scitex-orochi` command line as a subprocess: the installed script, else `python -c`."""

from __future__ import annotations

import shutil
import sys

from support.util import TIME_SCALE

WAIT_S = 30.0 * TIME_SCALE
CLI = (
    [shutil.which("scitex-orochi")]
    if shutil.which("scitex-orochi")
    else [sys.executable, "-c", "from scitex_orochi.cli import main; main()"]
)

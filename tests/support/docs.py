"""Reading the README the way .ci/run reads it."""

from __future__ import annotations

import re


def bash_block_after(text: str, heading: str) -> str:
    """The first line of the first ```bash block after the line starting with `heading`."""
    rest = text[text.index(heading) :]
    return re.search(r"^```bash\n(.*)$", rest, re.M).group(1)

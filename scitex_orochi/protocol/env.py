"""Environment variable names that agents and the hub share, and the published 0.1.0
names still honoured (with a deprecation notice) while the new name is unset."""

from __future__ import annotations

from collections.abc import Mapping

ENV_PREFIX = "SCITEX_OROCHI_"

# The published 0.1.0 names (its README). Key: the name after ENV_PREFIX.
LEGACY_ENV = {
    "HOST": "OROCHI_HOST",
    "PORT": "OROCHI_PORT",
    "DASHBOARD_PORT": "OROCHI_DASHBOARD_PORT",
    "TOKEN": "OROCHI_TOKEN",
    "DB": "OROCHI_DB",
    "GITEA_URL": "GITEA_URL",
    "GITEA_TOKEN": "GITEA_TOKEN",
}


def legacy_value(environ: Mapping[str, str], name: str) -> tuple[str | None, str | None]:
    """(value, legacy variable) of SCITEX_OROCHI_<name> when only its 0.1.0 name is set."""
    old = LEGACY_ENV.get(name)
    if old is None or environ.get(ENV_PREFIX + name) not in (None, ""):
        return None, None
    value = environ.get(old)
    return (value, old) if value not in (None, "") else (None, None)


def deprecation_notice(old: str) -> str:
    new = next(ENV_PREFIX + k for k, v in LEGACY_ENV.items() if v == old)
    return f"{old} is deprecated: rename it to {new} ({old} is read only while {new} is unset)"

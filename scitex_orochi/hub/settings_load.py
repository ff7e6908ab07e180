"""Reading the settings table: one value per setting from an environment mapping and
overrides, in table order (a derived default sees the values resolved before it), with
where each came from; and the text forms back: a child's environment, a masked view,
the warning about unknown variables, and the documentation's tables."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scitex_orochi.hub.errors import ConfigError
from scitex_orochi.hub.settings import (
    BY_KEY,
    DB_URL,
    GROUPS,
    HUB,
    PATH,
    PROCESS_ENV,
    SETTINGS,
    Setting,
)
from scitex_orochi.protocol.env import ENV_PREFIX, LEGACY_ENV, legacy_value

DEFAULT, DERIVED, OVERRIDE = "default", "derived", "override"
SECRET_PREFIX_CHARS = 4  # shown of a secret of at least SECRET_SHOWN_FROM_CHARS
SECRET_SHOWN_FROM_CHARS = 20
EXTRA_ENV = ("XDG_DATA_HOME",)  # read besides the table's variables (the data dir's default)


def flatten(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """{"ws": {"port": 0}, "data_dir": p} -> {"ws.port": 0, "data_dir": p}; unknown keys fail."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in GROUPS and key != HUB and isinstance(value, Mapping):
            flat.update({f"{key}.{name}": item for name, item in value.items()})
        else:
            flat[key] = value
    unknown = sorted(set(flat) - set(BY_KEY))
    if unknown:
        raise ConfigError(f"no such setting: {', '.join(unknown)}")
    return flat


def read_variable(environ: Mapping[str, str], setting: Setting) -> tuple[str | None, str | None]:
    """(text, variable it came from) of the first of the setting's variables that is set;
    a 0.1.0 name counts while its new name is unset. Empty counts as unset."""
    for name in setting.variables:
        raw = environ.get(ENV_PREFIX + name)
        if raw not in (None, ""):
            return raw, ENV_PREFIX + name
        raw, old = legacy_value(environ, name)
        if old is not None:
            return raw, old
    return None, None


def _checked(setting: Setting, value: Any, where: str) -> Any:
    if setting.minimum is not None and value < setting.minimum:
        raise ConfigError(f"{where}={value} must be >= {setting.minimum}")
    return value


def _parse(setting: Setting, raw: str, where: str) -> Any:
    try:
        value = setting.kind.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{where}={raw!r} {exc}") from None
    return _checked(setting, value, where)


def _coerce(setting: Setting, value: Any) -> Any:
    """An override: text is parsed as the variable's would be; a value of the setting's
    type is taken as it is (paths expanded), and checked against the minimum."""
    where = f"{setting.key} (override)"
    if isinstance(value, str) and setting.kind is not PATH:
        return _parse(setting, value, where)
    if value is None:
        return None
    if setting.kind is PATH:
        return Path(value).expanduser()
    expected = type(setting.default) if setting.default is not None else str
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{where}={value!r} is of the wrong type (wanted: {setting.kind.name})")
    return _checked(setting, value, where)


def resolve(
    environ: Mapping[str, str], overrides: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str], tuple[str, ...]]:
    """(values, sources, 0.1.0 names read) by key, in table order: an override, else the
    variable, else the derived default, else the default."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    used: set[str] = set()
    for setting in SETTINGS:
        key = setting.key
        if key in overrides:
            values[key], sources[key] = _coerce(setting, overrides[key]), OVERRIDE
            continue
        raw, variable = read_variable(environ, setting)
        if raw is not None and variable is not None:
            values[key], sources[key] = _parse(setting, raw, variable), variable
            if not variable.startswith(ENV_PREFIX):
                used.add(variable)
        elif setting.derive is not None:
            values[key], sources[key] = setting.derive(values, environ), DERIVED
        else:
            values[key], sources[key] = setting.default, DEFAULT
    legacy = tuple(old for old in LEGACY_ENV.values() if old in used)
    return values, sources, legacy


def relevant_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of `environ` a Config reads: SCITEX_OROCHI_*, the 0.1.0 names, XDG_DATA_HOME."""
    names = set(LEGACY_ENV.values()) | set(EXTRA_ENV)
    return {k: v for k, v in environ.items() if k.startswith(ENV_PREFIX) or k in names}


# ---- text forms ----------------------------------------------------------------------------
def render_value(setting: Setting, value: Any) -> str | None:
    """The variable's text for `value` (parses back to it); None when unset."""
    return None if value is None else setting.kind.render(value)


def mask_secret(value: str) -> str:
    if len(value) >= SECRET_SHOWN_FROM_CHARS:
        return value[:SECRET_PREFIX_CHARS] + "…"
    return "***"


def mask_url(url: str) -> str:
    """A URL's password replaced by ***."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def json_value(setting: Setting, value: Any) -> Any:
    """The value for JSON, secrets masked (a secret that is set shows a prefix at most)."""
    if value is None:
        return None
    if setting.secret:
        return mask_secret(str(value))
    if setting.kind is DB_URL:
        return mask_url(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def describe_value(setting: Setting, value: Any) -> str:
    shown = json_value(setting, value)
    if shown is None:
        return "(unset)"
    if shown == "":
        return "(empty)"
    if isinstance(shown, list):
        return ",".join(shown) or "(none)"
    return setting.kind.render(shown) if isinstance(shown, bool | int | float) else str(shown)


def unknown_variables(
    environ: Mapping[str, str], also_known: tuple[str, ...] = ()
) -> list[tuple[str, str | None]]:
    """SCITEX_OROCHI_* variables that are no setting (typos?), each with the closest name."""
    known = sorted({n for s in SETTINGS for n in s.variables} | {*PROCESS_ENV, *also_known})
    out = []
    for name in sorted(environ):
        suffix = name[len(ENV_PREFIX) :]
        if name.startswith(ENV_PREFIX) and suffix not in known:
            close = difflib.get_close_matches(suffix, known, n=1, cutoff=0.75)
            out.append((name, ENV_PREFIX + close[0] if close else None))
    return out


def _default_text(setting: Setting) -> str:
    if setting.derive is not None:
        return setting.derived_from
    if setting.default is None:
        return "(unset)"
    if setting.default == ():
        return "(none)"
    return setting.kind.render(setting.default) or '""'


def markdown() -> str:
    """The tables of docs/configuration.md: one per group."""
    lines: list[str] = []
    for group in GROUPS:
        title = "hub (top level: `cfg.<name>`)" if group == HUB else f"{group} (`cfg.{group}`)"
        lines += [
            f"### {title}",
            "",
            "| variable | attribute | type | default | minimum | meaning |",
            "|---|---|---|---|---|---|",
        ]
        for s in (s for s in SETTINGS if s.group == group):
            variables = " or ".join(f"`{ENV_PREFIX}{n}`" for n in s.variables)
            old = [LEGACY_ENV[n] for n in s.variables if n in LEGACY_ENV]
            if old:
                variables += " (0.1.0: " + ", ".join(f"`{o}`" for o in old) + ")"
            minimum = "" if s.minimum is None else str(s.minimum)
            help_text = s.help + (" **secret**" if s.secret else "")
            lines.append(
                f"| {variables} | `{s.key}` | {s.kind.name} | `{_default_text(s)}` "
                f"| {minimum} | {help_text} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # the tables of docs/configuration.md
    print(markdown(), end="")

"""An agent definition, `agents/<name>.yaml`, read and checked: errors name the file and key.

command: python                 # a string (split like a shell) or a list
args: [my_agent.py, --fast]     # appended to the command
workdir: ../agents-src          # relative to the YAML's directory (default: it)
channels: ["#general"]          # -> SCITEX_OROCHI_CHANNELS
machine: lab-1                  # the host it runs on (unset or "any": every host)
role: worker                    # -> SCITEX_OROCHI_ROLE
env: {LOG_LEVEL: debug}         # plain, non-secret values
env_from: [SCITEX_OROCHI_TOKEN] # NAMES of variables passed through from `launch`'s
                                # environment, never their values
bot_token_env: SCITEX_OROCHI_TELEGRAM_BOT_TOKEN   # any `*_env` key: one more name
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 64 * 1024
MAX_ITEMS = 256
MAX_TEXT = 4096
MAX_AGENTS = 256
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
KEYS = {"name", "command", "args", "workdir", "channels", "machine", "role", "env", "env_from"}
ANY_MACHINE = ("", "any", "*")


class SpecError(ValueError):
    """A YAML file that is not a valid agent definition; the message names file and key."""


@dataclass(frozen=True)
class AgentSpec:
    name: str
    path: Path
    argv: tuple[str, ...]
    workdir: Path
    channels: tuple[str, ...] = ()
    machine: str = ""
    role: str = ""
    env: dict[str, str] = field(default_factory=dict)
    env_from: tuple[str, ...] = ()

    def runs_on(self, host: str) -> bool:
        if self.machine.lower() in ANY_MACHINE:
            return True
        return self.machine.split(".")[0].lower() == host.split(".")[0].lower()

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": str(self.path),
            "argv": list(self.argv),
            "workdir": str(self.workdir),
            "channels": list(self.channels),
            "machine": self.machine or None,
            "role": self.role or None,
            "env_from": list(self.env_from),
        }


def _text(path: Path, key: str, value: Any, *, allow_empty: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(f"{path}: `{key}` must be text, got {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_TEXT:
        raise SpecError(f"{path}: `{key}` is longer than {MAX_TEXT} characters")
    if not text and not allow_empty:
        raise SpecError(f"{path}: `{key}` is empty")
    return text


def _list(path: Path, key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SpecError(f"{path}: `{key}` must be a list")
    if len(value) > MAX_ITEMS:
        raise SpecError(f"{path}: `{key}` has more than {MAX_ITEMS} items")
    return [_text(path, f"{key}[{i}]", v) for i, v in enumerate(value)]


def _env_name(path: Path, key: str, value: Any) -> str:
    name = _text(path, key, value)
    if not ENV_NAME_RE.match(name):
        raise SpecError(f"{path}: `{key}`: {name!r} is not an environment variable name")
    return name


def parse(path: Path, data: Any) -> AgentSpec:
    stem = path.stem
    if not isinstance(data, dict):
        raise SpecError(f"{path}: must be a mapping of keys (command, args, ...)")
    secret_keys = [k for k in data if isinstance(k, str) and k.endswith("_env")]
    unknown = sorted(str(k) for k in data if k not in KEYS and k not in secret_keys)
    if unknown:
        raise SpecError(f"{path}: unknown key `{unknown[0]}` (known: {', '.join(sorted(KEYS))})")
    name = _text(path, "name", data.get("name", stem))
    if name != stem:
        raise SpecError(f"{path}: `name` {name!r} must match the file name ({stem!r})")
    if not NAME_RE.match(name):
        raise SpecError(
            f"{path}: `name` {name!r}: lowercase letters, digits, '.', '_', '-' (<= 64)"
        )
    if "command" not in data:
        raise SpecError(f"{path}: `command` is required")
    command = data["command"]
    if isinstance(command, list):
        argv = _list(path, "command", command)
    else:
        text = _text(path, "command", command)
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            raise SpecError(f"{path}: `command`: {exc}") from None
    if not argv:
        raise SpecError(f"{path}: `command` is empty")
    argv += _list(path, "args", data.get("args"))
    if len(argv) > MAX_ITEMS:
        raise SpecError(f"{path}: `command` and `args` have more than {MAX_ITEMS} items")
    workdir = path.parent
    if data.get("workdir") is not None:
        workdir = (path.parent / Path(_text(path, "workdir", data["workdir"]))).resolve()
    channels = _list(path, "channels", data.get("channels"))
    channels = [c if c.startswith(("#", "dm:")) else f"#{c}" for c in channels]
    env_raw = data.get("env") or {}
    if not isinstance(env_raw, dict):
        raise SpecError(f"{path}: `env` must be a mapping NAME: value")
    if len(env_raw) > MAX_ITEMS:
        raise SpecError(f"{path}: `env` has more than {MAX_ITEMS} entries")
    env = {
        _env_name(path, f"env.{k}", k): _text(path, f"env.{k}", v, allow_empty=True)
        for k, v in env_raw.items()
    }
    names = [
        _env_name(path, f"env_from[{i}]", v)
        for i, v in enumerate(_list(path, "env_from", data.get("env_from")))
    ]
    names += [_env_name(path, key, data[key]) for key in secret_keys]
    both = sorted(set(names) & set(env))
    if both:
        raise SpecError(f"{path}: `{both[0]}` is both in `env` (a value) and a secret name")
    return AgentSpec(
        name=name,
        path=path.resolve(),
        argv=tuple(argv),
        workdir=workdir.resolve(),
        channels=tuple(channels),
        machine=_text(path, "machine", data.get("machine") or "", allow_empty=True),
        role=_text(path, "role", data.get("role") or "", allow_empty=True),
        env=env,
        env_from=tuple(dict.fromkeys(names)),
    )


def load(path: Path) -> AgentSpec:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise SpecError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read: {exc}") from None
    return parse(path, data)


def agent_files(agents_dir: Path) -> list[Path]:
    files = sorted([*agents_dir.glob("*.yaml"), *agents_dir.glob("*.yml")])
    if len(files) > MAX_AGENTS:
        raise SpecError(f"{agents_dir}: more than {MAX_AGENTS} agent files")
    return files


def load_all(agents_dir: Path) -> dict[str, AgentSpec]:
    """Every agent in the directory, by name; the first invalid file raises SpecError."""
    if not agents_dir.is_dir():
        raise SpecError(f"{agents_dir}: no such directory (the agents' YAML files)")
    specs: dict[str, AgentSpec] = {}
    for path in agent_files(agents_dir):
        spec = load(path)
        if spec.name in specs:
            raise SpecError(
                f"{path}: agent {spec.name!r} is also defined in {specs[spec.name].path}"
            )
        specs[spec.name] = spec
    return specs


def find(agents_dir: Path, name: str) -> AgentSpec:
    for ext in (".yaml", ".yml"):
        path = agents_dir / f"{name}{ext}"
        if path.is_file():
            return load(path)
    raise SpecError(f"no agent {name!r}: {agents_dir}/{name}.yaml does not exist")

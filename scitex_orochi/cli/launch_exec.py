"""`python -m scitex_orochi.cli.launch_exec NAME --agents-dir DIR`: what supervisord runs for a
launched agent. Reads `DIR/NAME.yaml`, builds the agent's environment and execs its command
(so supervisord supervises the agent's own pid).

The environment is built, not inherited: a few harmless variables (PATH, HOME, locale, the
hub's host and ports), the YAML's plain `env`, the agent's identity (SCITEX_OROCHI_AGENT,
_CHANNELS, _ROLE), and the variables the YAML *names* in `env_from`, copied from
supervisord's own environment (which it inherited from `scitex-orochi launch`). Secret
values never pass through a file: not the YAML, not supervisord.conf."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from scitex_orochi.cli.agent_spec import AgentSpec, SpecError, find
from scitex_orochi.protocol.env import ENV_PREFIX

EXIT_CONFIG = 78  # EX_CONFIG: supervisord gives up after its retries, the log says why
BASE_NAMES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TERM",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "NO_COLOR",
    ENV_PREFIX + "HOST",
    ENV_PREFIX + "PORT",
    ENV_PREFIX + "DASHBOARD_PORT",
)


def agent_env(spec: AgentSpec, source: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment from `source` (supervisord's); KeyError names a missing one."""
    env = {k: v for k, v in source.items() if k in BASE_NAMES or k.startswith("LC_")}
    env.update(spec.env)
    env[ENV_PREFIX + "AGENT"] = spec.name
    if spec.channels:
        env[ENV_PREFIX + "CHANNELS"] = ",".join(spec.channels)
    if spec.role:
        env[ENV_PREFIX + "ROLE"] = spec.role
    for name in spec.env_from:
        if not source.get(name):
            raise KeyError(name)
        env[name] = source[name]
    return env


def main(argv: list[str] | None = None) -> None:
    from scitex_orochi.hub.config import process_environ

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[1] != "--agents-dir":
        print(
            "usage: python -m scitex_orochi.cli.launch_exec NAME --agents-dir DIR", file=sys.stderr
        )
        sys.exit(2)
    name, agents_dir = args[0], Path(args[2])
    try:
        spec = find(agents_dir, name)
        env = agent_env(spec, process_environ())
    except SpecError as exc:
        print(f"launch: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except KeyError as exc:
        print(
            f"launch: agent {name}: {exc.args[0]} (named in env_from) is not set in the "
            "environment `scitex-orochi launch` was started with",
            file=sys.stderr,
        )
        sys.exit(EXIT_CONFIG)
    try:
        os.chdir(spec.workdir)
        os.execvpe(spec.argv[0], list(spec.argv), env)
    except OSError as exc:
        print(f"launch: agent {name}: cannot run {spec.argv[0]!r}: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)


if __name__ == "__main__":
    main()

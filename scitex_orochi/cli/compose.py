"""The deployment directory `scitex-orochi init` writes: Docker Compose files for a stable
and a dev hub, and an `.env.example` that names the secret variables without their values.

Pure: `render(options)` returns {file name: text}; the command writes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scitex_orochi.hub.settings import BY_KEY, SETTINGS
from scitex_orochi.protocol.env import ENV_PREFIX

INSTANCES = ("stable", "dev")
ENV_EXAMPLE = ".env.example"
CONTAINER_PORT = BY_KEY["ws.port"].default  # the image's ports (Dockerfile ENV)
CONTAINER_DASHBOARD_PORT = BY_KEY["http.port"].default
HEALTH_ROUTE = "/healthz"  # gateway_http/metrics.py
DEFAULT_IMAGE = "scitex-orochi:latest"
# Secrets only the stable hub gets: two bridges polling one Telegram bot conflict.
STABLE_ONLY_GROUPS = ("telegram", "gitea")
# Settings that are not secret but configure the bridges (named, commented out).
BRIDGE_SETTINGS = ("telegram.enabled", "telegram.chat_id", "gitea.url")


def env_name(key: str) -> str:
    return ENV_PREFIX + BY_KEY[key].env


def secret_names() -> list[tuple[str, str, str]]:
    """(group, variable, help) of every secret setting, in table order."""
    return [(s.group, ENV_PREFIX + s.env, s.help) for s in SETTINGS if s.secret]


@dataclass(frozen=True)
class InitOptions:
    image: str = DEFAULT_IMAGE
    build_context: Path | None = None  # a checkout with the Dockerfile; None: image only
    public_host: str = "localhost"  # how browsers reach the hubs (dev origin, upstream URL)
    stable_port: int = CONTAINER_PORT
    stable_dashboard_port: int = CONTAINER_DASHBOARD_PORT
    dev_port: int = CONTAINER_PORT + 1
    dev_dashboard_port: int = CONTAINER_DASHBOARD_PORT + 1

    def ports(self, instance: str) -> tuple[int, int]:
        if instance == "stable":
            return self.stable_port, self.stable_dashboard_port
        return self.dev_port, self.dev_dashboard_port

    def dashboard_origin(self, instance: str) -> str:
        return f"http://{self.public_host}:{self.ports(instance)[1]}"


def project(instance: str) -> str:
    return f"orochi-{instance}"


def compose_file(instance: str) -> str:
    return f"docker-compose.{instance}.yml"


def _healthcheck() -> dict[str, Any]:
    probe = (
        "import urllib.request; urllib.request.urlopen("
        f"'http://127.0.0.1:{CONTAINER_DASHBOARD_PORT}{HEALTH_ROUTE}', timeout=2)"
    )
    return {
        "test": ["CMD", "python", "-c", probe],
        "interval": "15s",
        "timeout": "3s",
        "retries": 3,
        "start_period": "20s",
    }


def service(instance: str, opts: InitOptions) -> dict[str, Any]:
    port, dashboard_port = opts.ports(instance)
    env: dict[str, str] = {}
    for group, name, _help in secret_names():
        if instance == "stable" or group not in STABLE_ONLY_GROUPS:
            env[name] = "${" + name + ":-}"  # from the shell or ./.env, never written here
    if instance == "stable":
        for key in BRIDGE_SETTINGS:
            name = env_name(key)
            env[name] = "${" + name + ":-}"
        env[env_name("http.cors_origins")] = opts.dashboard_origin("dev")
    else:
        stable_dashboard = opts.ports("stable")[1]
        env[env_name("http.dashboard_ws_upstream")] = f"ws://{opts.public_host}:{stable_dashboard}"
    svc: dict[str, Any] = {"image": opts.image}
    if opts.build_context is not None:
        svc["build"] = {"context": str(opts.build_context), "dockerfile": "Dockerfile"}
    svc.update(
        {
            "container_name": f"orochi-server-{instance}",
            "restart": "unless-stopped",
            "ports": [
                f"{port}:{CONTAINER_PORT}",
                f"{dashboard_port}:{CONTAINER_DASHBOARD_PORT}",
            ],
            "volumes": [f"orochi-{instance}-data:/data"],
            "environment": env,
            "healthcheck": _healthcheck(),
        }
    )
    return svc


def compose(instance: str, opts: InitOptions) -> dict[str, Any]:
    # No top-level `name:` (the standalone docker-compose 1.x refuses it): `deploy` passes
    # `-p orochi-<instance>`, and the service and volume names differ per instance anyway.
    return {
        "services": {project(instance): service(instance, opts)},
        "volumes": {f"orochi-{instance}-data": {}},
    }


def _header(instance: str, opts: InitOptions) -> str:
    port, dashboard_port = opts.ports(instance)
    lines = [
        f"# The {instance} Orochi hub, written by `scitex-orochi init`.",
        f"#   scitex-orochi deploy {instance}    (docker compose -p {project(instance)} "
        f"-f {compose_file(instance)} up -d --build)",
        f"# agents: ws://{opts.public_host}:{port}   dashboard: "
        f"http://{opts.public_host}:{dashboard_port}",
        "# Secrets come from the shell or from ./.env (copy .env.example); never put them here.",
    ]
    if instance == "dev":
        lines.append(
            "# The dev dashboard follows the stable hub (DASHBOARD_WS_UPSTREAM): sign in with"
            " a token of the stable hub; it only reads."
        )
    else:
        lines.append(
            "# CORS_ORIGINS lets the dev dashboard (that origin, as the browser shows it)"
            " read this hub."
        )
    return "\n".join(lines) + "\n"


def env_example() -> str:
    lines = [
        "# Secrets of the Orochi hubs: copy to .env (chmod 600) and fill in; docker compose",
        "# reads ./.env for the ${...} in docker-compose.*.yml. Never commit .env.",
        "# Empty means unset (the admin token is then generated at the first start and kept",
        "# in the /data volume). Telegram and Gitea go to the stable hub only.",
        "",
    ]
    for group, name, help_text in secret_names():
        lines.append(f"# {help_text}" + (" (stable only)" if group in STABLE_ONLY_GROUPS else ""))
        lines.append(f"{name}=")
    lines += ["", "# Not secret: the bridges' other settings (stable only)."]
    for key in BRIDGE_SETTINGS:
        lines.append(f"# {BY_KEY[key].help}")
        lines.append(f"# {env_name(key)}=")
    return "\n".join(lines) + "\n"


def render(opts: InitOptions) -> dict[str, str]:
    """{file name: text} of the deployment directory."""
    files = {}
    for instance in INSTANCES:
        body = yaml.safe_dump(compose(instance, opts), sort_keys=False, width=100)
        files[compose_file(instance)] = _header(instance, opts) + body
    files[ENV_EXAMPLE] = env_example()
    return files


def find_checkout() -> Path | None:
    """The source tree this package runs from, when it is a checkout with the Dockerfile."""
    root = Path(__file__).resolve().parents[2]
    if (root / "Dockerfile").is_file() and (root / "pyproject.toml").is_file():
        return root
    return None

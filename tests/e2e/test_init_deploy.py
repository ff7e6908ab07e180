"""`scitex-orochi init` and `deploy`: the deployment directory it writes (parsed as YAML, and
checked by Docker Compose itself when it is installed), and `deploy` with no engine, no
docker at all, and a fake docker that records what it is asked to run."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from scitex_orochi.cli import main
from scitex_orochi.cli.compose import secret_names

from support.util import TIME_SCALE

ENGINE_DOWN = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
    "Is the docker daemon running?"
)


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env={"NO_COLOR": "1", **(env or {})})


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def deploy_dir(tmp_path):
    result = run("init", str(tmp_path / "d"))
    assert result.exit_code == 0, result.output
    return tmp_path / "d"


def test_init_writes_both_compose_files_and_the_env_example(deploy_dir):
    stable = load(deploy_dir / "docker-compose.stable.yml")
    dev = load(deploy_dir / "docker-compose.dev.yml")
    s = stable["services"]["orochi-stable"]
    d = dev["services"]["orochi-dev"]
    assert s["ports"] == ["9559:9559", "8559:8559"]
    assert d["ports"] == ["9560:9559", "8560:8559"]
    assert (
        s["volumes"] == ["orochi-stable-data:/data"] and "orochi-stable-data" in stable["volumes"]
    )
    assert d["volumes"] == ["orochi-dev-data:/data"] and "orochi-dev-data" in dev["volumes"]
    for svc in (s, d):
        assert svc["restart"] == "unless-stopped"
        assert "/healthz" in " ".join(svc["healthcheck"]["test"])
        assert (Path(svc["build"]["context"]) / "Dockerfile").is_file()
    assert d["environment"]["SCITEX_OROCHI_DASHBOARD_WS_UPSTREAM"] == "ws://localhost:8559"
    assert s["environment"]["SCITEX_OROCHI_CORS_ORIGINS"] == "http://localhost:8560"
    # secrets are references, never values; the Telegram/Gitea ones go to stable only
    assert s["environment"]["SCITEX_OROCHI_ADMIN_TOKEN"] == "${SCITEX_OROCHI_ADMIN_TOKEN:-}"
    assert "SCITEX_OROCHI_TELEGRAM_BOT_TOKEN" in s["environment"]
    assert "SCITEX_OROCHI_TELEGRAM_BOT_TOKEN" not in d["environment"]
    example = (deploy_dir / ".env.example").read_text()
    names = [name for _g, name, _h in secret_names()]
    assert "SCITEX_OROCHI_GITEA_TOKEN" in names and "SCITEX_OROCHI_ADMIN_TOKEN" in names
    for name in names:
        assert f"\n{name}=\n" in example  # named, no value


def test_init_options_change_ports_image_and_host(tmp_path):
    result = run(
        "init",
        str(tmp_path / "d"),
        "--no-build",
        "--image",
        "reg.example/orochi:9",
        "--public-host",
        "hub.example.org",
        "--dev-port",
        "19560",
        "--dev-dashboard-port",
        "18560",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ports"]["dev"] == {"agents": 19560, "dashboard": 18560}
    d = load(tmp_path / "d" / "docker-compose.dev.yml")["services"]["orochi-dev"]
    assert d["image"] == "reg.example/orochi:9" and "build" not in d
    assert d["ports"] == ["19560:9559", "18560:8559"]
    s = load(tmp_path / "d" / "docker-compose.stable.yml")["services"]["orochi-stable"]
    assert s["environment"]["SCITEX_OROCHI_CORS_ORIGINS"] == "http://hub.example.org:18560"
    assert run("init", str(tmp_path / "e"), "--dev-port", "9559").exit_code == 2


def test_init_refuses_to_overwrite_without_force_and_dry_run_writes_nothing(tmp_path):
    target = tmp_path / "d"
    dry = run("init", str(target), "--dry-run")
    assert dry.exit_code == 0 and "docker-compose.stable.yml" in dry.output
    assert not target.exists()
    dry_json = json.loads(run("init", str(target), "--dry-run", "--json").output)
    assert dry_json["dry_run"] is True and len(dry_json["files"]) == 3
    assert run("init", str(target)).exit_code == 0
    (target / "docker-compose.dev.yml").write_text("# mine\n")
    again = run("init", str(target))
    assert again.exit_code == 2 and "--force" in again.output
    assert (target / "docker-compose.dev.yml").read_text() == "# mine\n"
    assert "(overwrite)" in run("init", str(target), "--dry-run", "--force").output
    assert run("init", str(target), "--force").exit_code == 0
    assert "services" in load(target / "docker-compose.dev.yml")


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


@pytest.mark.parametrize("instance", ["stable", "dev"])
def test_docker_compose_config_accepts_each_file(deploy_dir, instance):
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed (shutil.which('docker') is None)")
    cli = _compose_cli()
    if cli is None:
        pytest.skip("docker is installed but neither `docker compose` nor docker-compose is")
    path = deploy_dir / f"docker-compose.{instance}.yml"
    proc = subprocess.run(
        [*cli, "-p", f"orochi-{instance}", "-f", str(path), "config"],
        capture_output=True,
        text=True,
        timeout=60 * TIME_SCALE,
        cwd=deploy_dir,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"orochi-{instance}" in proc.stdout and "/data" in proc.stdout


# ---- deploy --------------------------------------------------------------------------------
def test_deploy_dry_run_prints_the_compose_commands(deploy_dir):
    out = run("deploy", "stable", "--dir", str(deploy_dir), "--dry-run").output
    assert out.strip() == (
        f"[dry-run] would run: docker compose -p orochi-stable -f "
        f"{deploy_dir}/docker-compose.stable.yml up -d --build"
    )
    status = json.loads(
        run("deploy", "status", "--dir", str(deploy_dir), "--dry-run", "--json").output
    )
    assert [c[3] for c in status["commands"]] == ["orochi-stable", "orochi-dev"]
    assert all(c[-3:] == ["ps", "--format", "json"] for c in status["commands"])


def fake_docker(bin_dir: Path, log: Path, *, engine_up: bool) -> None:
    """A `docker` that records its arguments; `info` fails as with no engine unless engine_up."""
    info = (
        "print('28.0.0')"
        if engine_up
        else f"sys.stderr.write({ENGINE_DOWN!r} + '\\n'); sys.exit(1)"
    )
    script = bin_dir / "docker"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "if sys.argv[1:2] == ['info']:\n"
        f"    {info}\n"
        "sys.exit(0)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def _path_with(bin_dir: Path) -> str:
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def test_deploy_with_no_engine_exits_at_once_saying_how_to_fix_it(deploy_dir, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker.log"
    fake_docker(bin_dir, log, engine_up=False)
    started = time.monotonic()
    result = run("deploy", "stable", "--dir", str(deploy_dir), env={"PATH": _path_with(bin_dir)})
    assert time.monotonic() - started < 5 * TIME_SCALE
    assert result.exit_code == 3, result.output
    assert "cannot reach the Docker engine" in result.output
    assert "systemctl start docker" in result.output and "DOCKER_HOST" in result.output
    assert "up" not in log.read_text().split()  # never got as far as compose


def test_deploy_with_no_docker_at_all(deploy_dir, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = run("deploy", "dev", "--dir", str(deploy_dir), env={"PATH": str(empty)})
    assert result.exit_code == 3, result.output
    assert "`docker` command is not installed" in result.output
    assert "docs.docker.com/engine/install" in result.output


def test_deploy_without_init_says_run_init(tmp_path):
    result = run("deploy", "stable", "--dir", str(tmp_path / "nothing"))
    assert result.exit_code == 2 and "scitex-orochi init" in result.output


def test_deploy_runs_compose_up_and_status_runs_ps_of_both(deploy_dir, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker.log"
    fake_docker(bin_dir, log, engine_up=True)
    env = {"PATH": _path_with(bin_dir)}
    assert run("deploy", "dev", "--dir", str(deploy_dir), env=env).exit_code == 0
    assert run("deploy", "status", "--dir", str(deploy_dir), env=env).exit_code == 0
    calls = [line for line in log.read_text().splitlines() if line.startswith("compose -p")]
    assert calls == [
        f"compose -p orochi-dev -f {deploy_dir}/docker-compose.dev.yml up -d --build",
        f"compose -p orochi-stable -f {deploy_dir}/docker-compose.stable.yml ps",
        f"compose -p orochi-dev -f {deploy_dir}/docker-compose.dev.yml ps",
    ]

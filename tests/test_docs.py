"""Every setting is documented, and the README keeps its two-command quick start."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitor.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "settings.md").read_text()
    for name, info in Settings.model_fields.items():
        var = f"DRIFTWATCH_{name.upper()}"
        assert var in text, f"{var} missing from docs/settings.md"
        assert info.description, f"setting {name} has no help text"


def test_readme_quick_start_is_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    block = quick.split("```", 2)[1]
    commands = [ln.strip() for ln in block.splitlines()[1:] if ln.strip()]
    assert commands == ["make demo", "make test"]


def test_compose_file_shape() -> None:
    """compose.yaml's structure, checked without docker: what old (1.29) and new Compose both
    accept, every service runnable (an image or a build), references that resolve."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    # docker-compose 1.x refuses a top-level `name:` (and anything else but these and x-*)
    assert {k for k in compose if not k.startswith("x-")} <= {"services", "volumes"}
    services = compose["services"]
    named_volumes = set(compose.get("volumes") or {})
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        if "image" in svc:  # pinned: a compose up months later runs what was tested
            assert ":" in svc["image"] and not svc["image"].endswith(":latest"), name
        build = svc.get("build")
        if isinstance(build, dict):
            assert (
                ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
            ).is_file()
        elif build is not None:
            assert (ROOT / build / "Dockerfile").is_file(), name
        for dep in svc.get("depends_on") or ():
            assert dep in services, (name, dep)
            # a default service never waits for an optional one (it would not start alone)
            if not svc.get("profiles"):
                assert not services[dep].get("profiles"), (name, dep)
        for vol in svc.get("volumes") or ():
            source = vol.split(":", 1)[0]
            if not source.startswith(("/", ".", "$", "~")):
                assert source in named_volumes, (name, source)
    services = compose["services"]
    default = {k: v for k, v in services.items() if not v.get("profiles")}
    assert set(default) == {"postgres", "driftwatch"}
    assert services["driftwatch"]["deploy"]["replicas"] == 1
    assert "DRIFTWATCH_DATABASE_URL" in services["driftwatch"]["environment"]
    for svc in default.values():
        assert "healthcheck" in svc
    # the optional Spark profile (docs/scale-out.md): master, worker, one-shot profiling job
    spark = {k for k, v in services.items() if "spark" in v.get("profiles", ())}
    assert spark == {"spark-master", "spark-worker", "profile-job"}
    assert services["spark-master"]["image"].startswith("apache/spark:")
    assert services["profile-job"]["restart"] == "no"
    job = services["profile-job"]["entrypoint"]
    assert job[:4] == ["driftwatch", "profile", "--engine", "spark"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="no docker-compose 1.x")
def test_docker_compose_v1_accepts_the_file() -> None:
    """Debian's docker-compose 1.29 validates the file without a docker daemon."""
    for extra in ([], ["--profile", "spark"]):
        done = subprocess.run(
            ["docker-compose", "-f", str(ROOT / "compose.yaml"), *extra, "config", "--quiet"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client")
def test_docker_compose_config_accepts_the_file() -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("docker client has no compose plugin here")
    done = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr

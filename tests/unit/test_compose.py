"""The compose deployment's structure (no Docker engine runs the tests): services, settings, GPUs,
volumes, healthchecks, secrets, and that every path and command it names exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from tuneloop.cli import main as cli
from tuneloop.settings_doc import rows

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
TUNELOOP = ("migrate", "init", "api", "worker", "beat")
SECRET = re.compile(r"PASSWORD|TOKEN|SECRET|WEBHOOK")


def test_every_service_of_the_deployment_is_there() -> None:
    assert set(SERVICES) == {
        *TUNELOOP,
        *("postgres", "redis", "prometheus", "alertmanager", "grafana"),
    }


DEPLOYMENT_FILES = [
    "docker-compose.yml",
    "docker-compose.cpu.yml",
    "Dockerfile",
    "README.md",
    *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").glob("*.md"))),
    *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "prometheus").rglob("*.yml"))),
]


@pytest.mark.parametrize("path", DEPLOYMENT_FILES)
def test_every_tuneloop_variable_named_is_a_real_setting(path: str) -> None:
    settings = {variable for variable, _, _ in rows()}
    named = set(re.findall(r"\bTUNELOOP_[A-Z0-9_]*[A-Z0-9]", (ROOT / path).read_text()))
    named = {n for n in named if not n.startswith("TUNELOOP_TEST_")}  # the tests' own
    assert named <= settings, f"{path}: not settings: {sorted(named - settings)}"


def test_secrets_come_from_the_environment_without_defaults() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    secrets = [m for m in re.finditer(r"\$\{(\w+)([^}]*)\}", text) if SECRET.search(m[1])]
    assert {m[1] for m in secrets} >= {
        "POSTGRES_PASSWORD",
        "TUNELOOP_ADMIN_TOKEN",
        "GRAFANA_ADMIN_PASSWORD",
        "ALERTMANAGER_WEBHOOK_URL",
    }
    assert all(m[2].startswith(":?") for m in secrets), [m[0] for m in secrets]
    assert SERVICES["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD:?"
    )


def _gpus(service: str) -> list[dict[str, Any]]:
    deploy = SERVICES[service].get("deploy", {})
    devices: list[dict[str, Any]] = (
        deploy.get("resources", {}).get("reservations", {}).get("devices", [])
    )
    return devices


@pytest.mark.parametrize("service", ["api", "worker"])
def test_api_and_worker_reserve_a_gpu(service: str) -> None:
    (device,) = _gpus(service)
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert device.get("count", 0) >= 1 or device.get("device_ids")


def test_only_api_and_worker_reserve_gpus() -> None:
    assert [s for s in SERVICES if _gpus(s)] == ["api", "worker"]


def test_api_healthcheck_asks_readyz_and_publishes_8000() -> None:
    api = SERVICES["api"]
    assert "http://127.0.0.1:8000/readyz" in " ".join(api["healthcheck"]["test"])
    assert api["command"][:1] == ["serve"] and "0.0.0.0" in api["command"]
    assert any(str(p).endswith(":8000") for p in api["ports"])


@pytest.mark.parametrize(
    ("service", "port"),
    [("api", 8000), ("prometheus", 9090), ("alertmanager", 9093), ("grafana", 3000)],
)
def test_published_ports(service: str, port: int) -> None:
    assert any(str(p).endswith(f":{port}") for p in SERVICES[service]["ports"])


def test_only_the_front_services_publish_ports() -> None:
    published = {s for s, spec in SERVICES.items() if spec.get("ports")}
    assert published == {"api", "prometheus", "alertmanager", "grafana"}


@pytest.mark.parametrize(
    "service", ["postgres", "redis", "api", "prometheus", "alertmanager", "grafana"]
)
def test_long_running_services_have_healthchecks(service: str) -> None:
    assert SERVICES[service]["healthcheck"]["test"]


def test_redis_persists_and_never_evicts() -> None:
    command = " ".join(SERVICES["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert any(v.endswith(":/data") for v in SERVICES["redis"]["volumes"])


def test_postgres_keeps_its_data_in_a_volume() -> None:
    assert any(v.endswith(":/var/lib/postgresql/data") for v in SERVICES["postgres"]["volumes"])


def test_migrate_runs_once_before_api_and_worker() -> None:
    assert SERVICES["migrate"]["command"] == ["db", "upgrade"]
    assert SERVICES["migrate"]["restart"] == "no"
    for service in ("init", "api", "worker", "beat"):
        needs = SERVICES[service]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", service
    for service in ("api", "worker"):
        assert SERVICES[service]["depends_on"]["init"]["condition"] == (
            "service_completed_successfully"
        )


def test_api_and_worker_share_the_artifact_volume_at_the_artifact_dir() -> None:
    mounts = []
    for service in ("api", "worker", "init"):
        spec = SERVICES[service]
        target = spec["environment"]["TUNELOOP_ARTIFACT_DIR"]
        (mount,) = [v for v in spec["volumes"] if v.split(":")[1] == target]
        mounts.append(mount.split(":")[0])
    assert len(set(mounts)) == 1 and mounts[0] in COMPOSE["volumes"]


def test_every_tuneloop_service_uses_the_image_and_the_shared_store_and_broker() -> None:
    for service in TUNELOOP:
        spec = SERVICES[service]
        assert spec["build"] == "." and spec["image"] == SERVICES["api"]["image"]
        env = spec["environment"]
        assert env["TUNELOOP_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["TUNELOOP_DATABASE_URL"]
        assert env["TUNELOOP_BROKER_URL"].startswith("redis://redis:6379/")
        assert env["TUNELOOP_ENV"] == "production"


@pytest.mark.parametrize("service", TUNELOOP)
def test_commands_are_real_cli_commands(service: str) -> None:
    args = list(SERVICES[service]["command"])
    command: click.Command = cli
    name = "tuneloop"
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        name = args.pop(0)
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"{service}: no command {name}"
        command = found
    assert not isinstance(command, click.Group), service
    command.make_context(name, args)  # raises on an unknown option


def test_mounted_host_paths_exist() -> None:
    for service, spec in SERVICES.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{service}: {source}"
            else:
                assert source in COMPOSE["volumes"], f"{service}: undeclared volume {source}"


def test_alertmanager_runs_the_mounted_entrypoint_with_the_webhook_from_the_environment() -> None:
    spec = SERVICES["alertmanager"]
    mount = next(v for v in spec["volumes"] if v.startswith("./prometheus/alertmanager:"))
    inside = mount.split(":")[1]
    script = spec["entrypoint"][-1]
    assert script.startswith(inside + "/")
    text = (ROOT / "prometheus/alertmanager" / Path(script).name).read_text()
    assert f"{inside}/alertmanager.yml" in text and "ALERTMANAGER_WEBHOOK_URL" in text
    assert spec["environment"]["ALERTMANAGER_WEBHOOK_URL"].startswith(
        "${ALERTMANAGER_WEBHOOK_URL:?"
    )


def test_prometheus_and_grafana_point_at_the_compose_services() -> None:
    config = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
    (api,) = [j for j in config["scrape_configs"] if j["job_name"] == "tuneloop-api"]
    (sd,) = api["dns_sd_configs"]
    assert sd["names"] == ["api"] and sd["port"] == 8000
    (alerting,) = config["alerting"]["alertmanagers"]
    assert alerting["static_configs"][0]["targets"] == ["alertmanager:9093"]
    sources = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    urls = {s["type"]: s["url"] for s in sources}
    assert urls == {
        "prometheus": "http://prometheus:9090",
        "alertmanager": "http://alertmanager:9093",
    }
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/tuneloop.yml").read_text())[
        "providers"
    ][0]
    assert (
        f"./grafana/dashboards:{provider['options']['path']}:ro" in SERVICES["grafana"]["volumes"]
    )


def test_dockerfile_builds_on_cuda_and_copies_every_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+runtime", text, re.M)
    assert "FROM ${CUDA_IMAGE}" in text
    copied = re.findall(r"^COPY (\S+)", text, re.M)
    for source in copied:
        assert (ROOT / source).exists(), source
    packages = {"core", "api", "monitor", "retrain", "tuneloop"}
    assert packages <= set(copied)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not set(copied) & set(ignored)
    assert ".venv" in ignored and ".git" in ignored


# The CPU override, merged as Compose merges files (compose-spec's merge rules, the part these
# files use): mappings merge key by key, `!reset` drops the base's value, a short `build: PATH`
# is `{context: PATH}`, and command-like sequences are replaced rather than appended.
class _ComposeLoader(yaml.SafeLoader):
    pass


RESET = object()
_ComposeLoader.add_constructor("!reset", lambda loader, node: RESET)
REPLACED = {"command", "entrypoint", "test"}


def _load(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load((ROOT / path).read_text(), Loader=_ComposeLoader)
    return loaded


def _merge(base: Any, override: Any, key: str = "") -> Any:
    if key == "build":
        base = {"context": base} if isinstance(base, str) else base
        override = {"context": override} if isinstance(override, str) else override
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for k, value in override.items():
            if value is RESET:
                merged.pop(k, None)
            else:
                merged[k] = _merge(base[k], value, k) if k in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in REPLACED:
        return base + [v for v in override if v not in base]
    return override


CPU: dict[str, Any] = _merge(_load("docker-compose.yml"), _load("docker-compose.cpu.yml"))


def test_the_cpu_override_names_only_services_of_the_deployment() -> None:
    assert set(_load("docker-compose.cpu.yml")["services"]) == set(TUNELOOP)
    assert set(CPU["services"]) == set(SERVICES)


def test_the_cpu_deployment_reserves_no_gpu() -> None:
    reserved = [s for s, spec in CPU["services"].items() if "deploy" in spec]
    assert reserved == []


@pytest.mark.parametrize("service", TUNELOOP)
def test_the_cpu_deployment_builds_one_cpu_image_and_keeps_the_rest(service: str) -> None:
    spec, base = CPU["services"][service], SERVICES[service]
    build = spec["build"]
    assert build["context"] == "."
    assert "cuda" not in build["args"]["CUDA_IMAGE"]
    assert build["args"]["TORCH_INDEX_URL"].endswith("/whl/cpu")
    assert spec["image"] == CPU["services"]["api"]["image"] != base["image"]
    assert spec["environment"] == {**base["environment"], "TUNELOOP_DEVICE": "cpu"}
    unchanged = set(base) - {"build", "image", "environment", "deploy"}
    assert {k: spec[k] for k in unchanged} == {k: base[k] for k in unchanged}


def test_the_cpu_build_arguments_are_the_dockerfiles() -> None:
    args = set(re.findall(r"^ARG (\w+)=", (ROOT / "Dockerfile").read_text(), re.M))
    for service in TUNELOOP:
        assert set(CPU["services"][service]["build"]["args"]) <= args

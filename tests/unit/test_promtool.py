"""Prometheus config, alert rules and Alertmanager config: promtool and amtool accept them, and
every alert has a unit test input that fires it and one that does not."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
ALERTS: list[dict[str, Any]] = [
    rule
    for path in RULE_FILES
    for group in yaml.safe_load(path.read_text())["groups"]
    for rule in group["rules"]
    if "alert" in rule
]
REQUIRED = {
    "TuneloopHighErrorRate",
    "TuneloopHighLatencyP99",
    "TuneloopQueueSaturated",
    "TuneloopDriftDetected",
    "TuneloopFeedbackQualityDrop",
    "TuneloopEstimatedAccuracyDrop",
    "TuneloopRetrainFailed",
    "TuneloopMonitorStale",
    "TuneloopModelNotReady",
    "TuneloopGenerationsCutByLength",
    "TuneloopGenerationRatingDrop",
}
COMPONENTS = {"serving", "quality", "drift", "retraining", "generation"}  # one dashboard each


def tool(name: str) -> str:
    """The binary's path; skip without it on a user's machine, fail under CI."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{name} is missing under CI (apt-get install prometheus prometheus-alertmanager)"
        )
    pytest.skip(f"{name} is not installed (Debian: apt-get install prometheus)")


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=PROMETHEUS)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_promtool_check_config() -> None:
    out = run(tool("promtool"), "check", "config", "prometheus.yml")
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in out  # the glob finds them all


def test_promtool_check_rules() -> None:
    out = run(tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert out.count("SUCCESS") == len(RULE_FILES)


def test_promtool_test_rules() -> None:
    out = run(tool("promtool"), "test", "rules", *map(str, TEST_FILES))
    assert out.count("SUCCESS") == len(TEST_FILES) and "FAILED" not in out


def test_the_required_alerts_exist_with_labels_and_runbooks() -> None:
    names = [a["alert"] for a in ALERTS]
    assert len(names) == len(set(names)) >= 11
    assert set(names) >= REQUIRED
    for alert in ALERTS:
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        assert alert["labels"]["component"] in COMPONENTS, alert["alert"]
        notes = alert["annotations"]
        assert all(notes.get(k, "").strip() for k in ("summary", "description", "runbook"))


def _alert_tests() -> list[dict[str, Any]]:
    cases = []
    for path in TEST_FILES:
        for group in yaml.safe_load(path.read_text())["tests"]:
            cases += group.get("alert_rule_test", [])
    return cases


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    cases = _alert_tests()
    for alert in ALERTS:
        mine = [c for c in cases if c["alertname"] == alert["alert"]]
        assert any(c.get("exp_alerts") for c in mine), f"{alert['alert']}: no firing test"
        assert any(not c.get("exp_alerts") for c in mine), f"{alert['alert']}: no quiet test"


def test_the_unit_tests_load_every_rule_file() -> None:
    loaded = set()
    for path in TEST_FILES:
        for name in yaml.safe_load(path.read_text())["rule_files"]:
            loaded.add((path.parent / name).resolve())
    assert loaded == {p.resolve() for p in RULE_FILES}


def test_amtool_accepts_the_alertmanager_config_with_a_webhook(tmp_path: Path) -> None:
    template = (PROMETHEUS / "alertmanager/alertmanager.yml").read_text()
    assert template.count("${ALERTMANAGER_WEBHOOK_URL}") == 1
    config = tmp_path / "alertmanager.yml"
    config.write_text(template.replace("${ALERTMANAGER_WEBHOOK_URL}", "https://hooks.example/x"))
    out = run(tool("amtool"), "check-config", str(config))
    assert "SUCCESS" in out and "1 receivers" in out


def test_the_entrypoint_writes_the_webhook_url_verbatim(tmp_path: Path) -> None:
    script = (PROMETHEUS / "alertmanager/entrypoint.sh").read_text()
    source = "/etc/tuneloop/alertmanager/alertmanager.yml"
    local = script.replace(source, str(PROMETHEUS / "alertmanager/alertmanager.yml"))
    local = local.replace("/tmp/alertmanager.yml", str(tmp_path / "out.yml"))
    local = local.replace("exec /bin/alertmanager", "exit 0 #")
    url = "https://hooks.example/alert?team=ml&key=a|b/c"
    done = subprocess.run(
        ["sh", "-c", local],
        env={"PATH": os.environ["PATH"], "ALERTMANAGER_WEBHOOK_URL": url},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    receivers = yaml.safe_load((tmp_path / "out.yml").read_text())["receivers"]
    assert receivers[0]["webhook_configs"][0]["url"] == url
    missing = subprocess.run(["sh", "-c", local], env={"PATH": os.environ["PATH"]})
    assert missing.returncode != 0

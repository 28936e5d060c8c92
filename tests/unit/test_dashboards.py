"""The dashboards: the committed JSON is the generator's output, every query names a metric that
exists, store-backed gauges are aggregated with max, and each dashboard lists its alerts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from api import metrics
from api.store_metrics import StoreCollector
from core.settings import MonitorSettings
from core.store.db import Database, upgrade
from grafana.board import expressions
from grafana.build import DATASOURCE_NAME, DATASOURCE_UID
from grafana.generate import DASHBOARDS, outputs

ROOT = Path(__file__).resolve().parents[2]
BOARDS = {name: build() for name, build in DASHBOARDS.items()}
RULES = [
    rule
    for path in sorted((ROOT / "prometheus/rules").glob("*.yml"))
    for group in yaml.safe_load(path.read_text())["groups"]
    for rule in group["rules"]
]
QUERIES = [q for board in BOARDS.values() for q in expressions(board)] + [
    (rule.get("alert") or rule["record"], rule["expr"]) for rule in RULES
]
STORE_METRIC = re.compile(r"(?<![\w:])tuneloop_(?:retrain|monitor|canary)_\w+")
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "count", "stddev", "stdvar", "topk", "bottomk"}
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum"),
}


def test_committed_json_is_the_generators_output() -> None:
    for path, text in outputs().items():
        assert path.read_text() == text, f"{path.name} differs: run python -m grafana.generate"
    assert {p.name for p in (ROOT / "grafana/dashboards").glob("*.json")} == {
        p.name for p in outputs()
    }


def test_five_dashboards_with_unique_uids_and_titles() -> None:
    assert set(BOARDS) == {"serving", "quality", "drift", "retraining", "generation"}
    assert len({b["uid"] for b in BOARDS.values()}) == 5
    assert len({b["title"] for b in BOARDS.values()}) == 5


def _provisioned() -> dict[str, Any]:
    sources = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    (prometheus,) = [s for s in sources if s["type"] == "prometheus"]
    return dict(prometheus)


def test_panels_use_the_provisioned_datasource() -> None:
    source = _provisioned()
    assert (source["uid"], source["name"]) == (DATASOURCE_UID, DATASOURCE_NAME)
    for board in BOARDS.values():
        for panel in board["panels"]:
            if panel["type"] == "alertlist":
                assert panel["options"]["datasource"] == source["name"]
                continue
            uids = {panel["datasource"]["uid"], *(t["datasource"]["uid"] for t in panel["targets"])}
            assert uids == {source["uid"]}, panel["title"]


def test_panels_have_unique_ids_and_fit_the_grid() -> None:
    for board in BOARDS.values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24 and panel["title"] and panel.get("description")


def test_each_dashboard_lists_the_alerts_of_its_component() -> None:
    components = {rule["labels"]["component"] for rule in RULES if "alert" in rule}
    listed = set()
    for name, board in BOARDS.items():
        (panel,) = [p for p in board["panels"] if p["type"] == "alertlist"]
        assert panel["options"]["alertInstanceLabelFilter"] == f'{{component="{name}"}}'
        assert panel["options"]["stateFilter"]["firing"]
        listed.add(name)
    assert components == listed


def test_retraining_annotates_champion_changes() -> None:
    (change,) = [a for a in BOARDS["retraining"]["annotations"]["list"] if "expr" in a]
    assert "changes(max(tuneloop_retrain_champion_version)" in change["expr"]


def _innermost_aggregation(expr: str, at: int) -> str | None:
    depth = 0
    for i in range(at - 1, -1, -1):
        if expr[i] == ")":
            depth += 1
        elif expr[i] == "(" and depth:
            depth -= 1
        elif expr[i] == "(":
            head = re.search(r"(\w+)\s*(?:(?:by|without)\s*\([^()]*\))?\s*$", expr[:i])
            if head and head[1] in AGGREGATIONS:
                return head[1]
    return None


@pytest.mark.parametrize(("where", "expr"), QUERIES, ids=[w for w, _ in QUERIES])
def test_store_backed_gauges_are_taken_with_max(where: str, expr: str) -> None:
    if where.split(": ")[-1].startswith("variable"):
        return  # label_values() reads labels, no values
    for match in STORE_METRIC.finditer(expr):
        aggregation = _innermost_aggregation(expr, match.start())
        assert aggregation == "max", f"{match[0]} under {aggregation} in {expr}"


def _families(tmp_path: Path) -> dict[str, set[str]]:
    """Every metric the api exposes (its own and the store's): family -> sample names."""
    families: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                families[family.name] = {family.name + s for s in SUFFIXES[family.type]}
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    db = Database(url)
    try:
        collector = StoreCollector(db, monitor=MonitorSettings(), columns=lambda: ("length",))
        for family in collector.collect():
            families[family.name] = {s.name for s in family.samples}
    finally:
        db.dispose()
    return families


def _names(expr: str) -> set[str]:
    """Our metric and recording-rule names in an expression (quoted label values left out)."""
    tokens = re.findall(r"[a-zA-Z_:][\w:]*", re.sub(r'"[^"]*"', '""', expr))
    return {t for t in tokens if "tuneloop" in t}


def test_every_query_names_a_metric_that_exists(tmp_path: Path) -> None:
    families = _families(tmp_path)
    known = set().union(*families.values()) | {r["record"] for r in RULES if "record" in r}
    used: set[str] = set()
    for where, expr in QUERIES:
        named = _names(expr)
        assert named <= known, f"{where}: unknown {sorted(named - known)}"
        used |= named
    unwatched = [name for name, samples in families.items() if not samples & used]
    assert not unwatched, f"metrics no panel or rule shows: {unwatched}"


def test_dashboard_json_parses_back_to_the_same_dashboards() -> None:
    for name, board in BOARDS.items():
        path = ROOT / "grafana/dashboards" / f"{name}.json"
        assert json.loads(path.read_text()) == board


def test_serving_has_the_canary_row() -> None:
    queries = " ".join(expr for _, expr in expressions(BOARDS["serving"]))
    titles = {p["title"] for p in BOARDS["serving"]["panels"]}
    assert {"Canary share", "Canary live metric by arm", "Canary test statistic"} <= titles
    assert {"Shadow agreement", "Shadow predictions", "Shadow texts run and skipped"} <= titles
    for name in ("share", "metric", "items", "statistic", "threshold", "shadow_agreement"):
        assert f"tuneloop_canary_{name}" in queries, name

"""A dashboard as Grafana's file provisioning loads it: variables, annotations, the panels laid
out on the grid, and every PromQL query it holds (for the tests that run them)."""

from __future__ import annotations

from grafana.build import DATASOURCE, GRID_WIDTH, JSON


def variable(name: str, label: str, metric: str) -> JSON:
    """A multi-value query variable over the values of label `name` of `metric`; All is `.*`."""
    query = f"label_values({metric}, {name})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "regex": "",
        "sort": 1,
        "hide": 0,
    }


def annotation(name: str, expr: str, *, title: str, text: str, color: str) -> JSON:
    """An annotation drawn wherever `expr` returns a sample."""
    return {
        "name": name,
        "datasource": DATASOURCE,
        "enable": True,
        "hide": False,
        "iconColor": color,
        "expr": expr,
        "step": "1m",
        "titleFormat": title,
        "textFormat": text,
        "tagKeys": "",
        "useValueForTime": False,
    }


BUILTIN_ANNOTATION: JSON = {
    "builtIn": 1,
    "name": "Annotations & Alerts",
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "type": "dashboard",
}


def layout(panels: list[JSON]) -> list[JSON]:
    """Number the panels and place them left to right, wrapping at the grid width."""
    placed: list[JSON] = []
    x = y = row_height = 0
    for number, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        placed.append({"id": number, **panel, "gridPos": {"x": x, "y": y, "w": w, "h": h}})
        x, row_height = x + w, max(row_height, h)
    return placed


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    panels: list[JSON],
    variables: list[JSON] | None = None,
    annotations: list[JSON] | None = None,
) -> JSON:
    """A complete dashboard as Grafana's file provisioning loads it."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["tuneloop"],
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "links": [
            {"type": "dashboards", "tags": ["tuneloop"], "asDropdown": False, "title": "tuneloop"}
        ],
        "annotations": {"list": [BUILTIN_ANNOTATION, *(annotations or [])]},
        "templating": {"list": variables or []},
        "panels": layout(panels),
    }


def expressions(board: JSON) -> list[tuple[str, str]]:
    """(where, PromQL) of every query of a dashboard: panel targets, annotations, variables."""
    found = [
        (f"{board['uid']}: {panel['title']} [{t['refId']}]", t["expr"])
        for panel in board["panels"]
        for t in panel.get("targets", [])
    ]
    found += [
        (f"{board['uid']}: annotation {a['name']}", a["expr"])
        for a in board["annotations"]["list"]
        if "expr" in a
    ]
    for v in board["templating"]["list"]:
        metric = v["query"].removeprefix("label_values(").split(",")[0]
        found.append((f"{board['uid']}: variable {v['name']}", metric))
    return found

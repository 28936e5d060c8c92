"""Building blocks of the dashboards as plain dicts: targets, panels, variables, the layout."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

# The provisioned Prometheus datasource (grafana/provisioning/datasources/); panels refer to it
# by uid, the alert-list panels by name.
DATASOURCE_UID = "tuneloop-prometheus"
DATASOURCE_NAME = "Prometheus"
DATASOURCE: JSON = {"type": "prometheus", "uid": DATASOURCE_UID}
GRID_WIDTH = 24


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> JSON:
    """One PromQL query of a panel (refIds are set by the panel)."""
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "format": "table" if table else "time_series",
    }


def _with_refs(targets: list[JSON]) -> list[JSON]:
    return [{**t, "refId": chr(ord("A") + i)} for i, t in enumerate(targets)]


def _thresholds(steps: list[tuple[float | None, str]]) -> JSON:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def timeseries(
    title: str,
    targets: list[JSON],
    *,
    description: str,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    minimum: float | None = None,
    maximum: float | None = None,
    steps: list[tuple[float | None, str]] | None = None,
    stepped: bool = False,
) -> JSON:
    """A time-series panel; `steps` draws threshold lines."""
    defaults: JSON = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineInterpolation": "stepAfter" if stepped else "linear",
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "line" if steps else "off"},
        },
        "thresholds": _thresholds(steps or [(None, "green")]),
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": _with_refs(targets),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "gridPos": {"w": width, "h": height},
    }


def stat(
    title: str,
    targets: list[JSON],
    *,
    description: str,
    unit: str = "short",
    steps: list[tuple[float | None, str]] | None = None,
    mappings: list[JSON] | None = None,
    decimals: int | None = None,
    width: int = 6,
) -> JSON:
    """A single-value panel showing the last value; `steps` colour it."""
    defaults: JSON = {
        "unit": unit,
        "thresholds": _thresholds(steps or [(None, "green")]),
        "mappings": mappings or [],
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": _with_refs(targets),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
            "justifyMode": "auto",
            "orientation": "auto",
        },
        "gridPos": {"w": width, "h": 4},
    }


def table(title: str, targets: list[JSON], *, description: str, width: int = 6) -> JSON:
    """A table of the labels of an instant query (the value column hidden)."""
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": _with_refs(targets),
        "transformations": [
            {"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}
        ],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True},
        "gridPos": {"w": width, "h": 4},
    }


def value_map(values: dict[int, tuple[str, str]]) -> list[JSON]:
    """Value mappings: number -> (text, colour)."""
    options = {
        str(k): {"text": t, "color": c, "index": i} for i, (k, (t, c)) in enumerate(values.items())
    }
    return [{"type": "value", "options": options}]


def alert_list(component: str) -> JSON:
    """Firing and pending Prometheus alerts whose `component` label is this dashboard's."""
    return {
        "type": "alertlist",
        "title": f"Alerts ({component})",
        "description": (
            "Prometheus alert rules (prometheus/rules/) with the label "
            f'component="{component}" that are firing or pending.'
        ),
        "options": {
            "viewMode": "list",
            "groupMode": "default",
            "groupBy": [],
            "maxItems": 20,
            "sortOrder": 3,
            "dashboardAlerts": False,
            "alertName": "",
            "alertInstanceLabelFilter": f'{{component="{component}"}}',
            "datasource": DATASOURCE_NAME,
            "showInstances": True,
            "stateFilter": {
                "firing": True,
                "pending": True,
                "recovering": True,
                "noData": False,
                "normal": False,
                "error": True,
            },
        },
        "gridPos": {"w": GRID_WIDTH, "h": 6},
    }


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


RATE = "[$__rate_interval]"


def quantiles(metric: str, selector: str, by: str, qs: tuple[float, ...]) -> list[JSON]:
    """histogram_quantile targets of a histogram, grouped by label `by` (or not at all)."""
    legend = "{{" + by + "}}" if by else ""
    group = f"le, {by}" if by else "le"
    rate = f"rate({metric}_bucket{{{selector}}}{RATE})"
    return [
        target(
            f"histogram_quantile({q}, sum by ({group}) ({rate}))",
            f"p{round(q * 100)} {legend}".strip(),
        )
        for q in qs
    ]


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

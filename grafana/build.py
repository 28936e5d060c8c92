"""Building blocks of the dashboards as plain dicts: targets and panels (the dashboard that
lays them out: `grafana.board`)."""

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


def _panel(
    kind: str,
    title: str,
    targets: list[JSON],
    description: str,
    defaults: JSON,
    options: JSON,
    size: tuple[int, int],
    **between: Any,
) -> JSON:
    """A panel of `kind` on the Prometheus datasource, `size` (width, height) on the grid
    (`between`: keys after its targets)."""
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": _with_refs(targets),
        **between,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "gridPos": {"w": size[0], "h": size[1]},
    }


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
    options = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel("timeseries", title, targets, description, defaults, options, (width, height))


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
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "area",
        "textMode": "auto",
        "justifyMode": "auto",
        "orientation": "auto",
    }
    return _panel("stat", title, targets, description, defaults, options, (width, 4))


def table(title: str, targets: list[JSON], *, description: str, width: int = 6) -> JSON:
    """A table of the labels of an instant query (the value column hidden)."""
    hidden = {"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}
    return _panel(
        "table",
        title,
        targets,
        description,
        {},
        {"showHeader": True},
        (width, 4),
        transformations=[hidden],
    )


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

"""The report's first screen reads the stored check's figures by their stored names."""

from __future__ import annotations

from core.settings import MonitorSettings
from core.store.db import Database
from monitor.report_summary import summary_html
from tests.monitoring import judged_check

CELL = '<td style="padding:3px 12px 3px 0;text-align:left">'


def test_the_summary_shows_the_share_rated_low_and_the_decision(db: Database) -> None:
    html = summary_html(judged_check(db), MonitorSettings())
    assert f"{CELL}share rated <= 2</td>{CELL}0.250</td>" in html
    assert f"{CELL}feedback items</td>{CELL}40</td>" in html
    assert "decision: retrain" in html and "Drift detected" in html

"""Write the dashboards' JSON from the code that defines them: `python -m grafana.generate`.

`tests/unit/test_dashboards.py` fails when the committed JSON differs from this output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana.build import JSON
from grafana.drift import drift
from grafana.generation import generation
from grafana.quality import quality
from grafana.retraining import retraining
from grafana.serving import serving

OUT = Path(__file__).resolve().parent / "dashboards"
DASHBOARDS: dict[str, Callable[[], JSON]] = {
    "serving": serving,
    "quality": quality,
    "drift": drift,
    "retraining": retraining,
    "generation": generation,
}


def render(dashboard: JSON) -> str:
    """The JSON text exactly as committed (stable key order, trailing newline)."""
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    """Every dashboard file and the text it should hold."""
    return {OUT / f"{name}.json": render(build()) for name, build in DASHBOARDS.items()}


def main() -> int:
    """Write the files; print what changed."""
    for path, text in outputs().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

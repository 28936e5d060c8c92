"""matplotlib for the drill's figures, from the optional `reports` extra: nothing else plots."""

from __future__ import annotations

import importlib.util
from typing import Any

MISSING = (
    "the drill's figures need matplotlib, in the `reports` extra: "
    "pip install 'tuneloop[reports]' (make install includes it)"
)


class PlottingMissing(RuntimeError):
    """matplotlib is not installed."""


def missing() -> str | None:
    """Why the drill cannot plot here, or None when it can (checked before a long run)."""
    return MISSING if importlib.util.find_spec("matplotlib") is None else None


def pyplot() -> Any:
    """`matplotlib.pyplot` on the Agg backend (files, no display), or `PlottingMissing`."""
    try:
        import matplotlib
    except ImportError:
        raise PlottingMissing(MISSING) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

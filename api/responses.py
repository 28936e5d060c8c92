"""A JSON response rendered by orjson (FastAPI deprecated its own JSON)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JSON(JSONResponse):
    """A JSONResponse, so that FastAPI documents each route's `response_model` as its answer
    (for any other response class it documents every 2xx as a string)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)

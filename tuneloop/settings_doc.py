"""The README's settings table, generated from the settings classes so it cannot drift."""

from __future__ import annotations

from typing import Any

from pydantic_settings import BaseSettings

from core.settings import ComponentSettings, Settings


def rows() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting."""
    out: list[tuple[str, str, str]] = []
    _collect(Settings, out)
    return out


def _collect(cls: type[BaseSettings], out: list[tuple[str, str, str]]) -> None:
    prefix = str(cls.model_config.get("env_prefix", ""))
    for name, field in cls.model_fields.items():
        annotation: Any = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, ComponentSettings):
            _collect(annotation, out)
            continue
        default = field.get_default(call_default_factory=False)
        shown = "" if default is None else str(default)
        if name == "home":
            shown = "~/.tuneloop"
        out.append((f"{prefix}{name}".upper(), shown, field.description or ""))


def markdown_table() -> str:
    """Every setting as a Markdown table."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for variable, default, description in rows():
        lines.append(f"| `{variable}` | `{default}` | {description} |")
    return "\n".join(lines)

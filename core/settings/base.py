"""The base every component's settings class shares, and the parsing of list-valued settings."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


def split_list(value: str) -> list[str]:
    """A comma-separated setting's items, blanks left out."""
    return [item.strip() for item in value.split(",") if item.strip()]


class ComponentSettings(BaseSettings):
    """Base of every component's settings: env prefix set per class, unknown variables ignored."""

    # Errors never echo their input: a refused setting must not print a secret beside it.
    model_config = SettingsConfigDict(
        extra="ignore", validate_default=True, hide_input_in_errors=True
    )

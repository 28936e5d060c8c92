"""Settings names, derived paths, refusal of placeholder secrets, and the docs/settings.md table."""

from __future__ import annotations

import math
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from core.sequential import SequentialOptions
from core.settings import CanarySettings, MonitorSettings, RetrainSettings, Settings
from monitor.drift import DriftOptions
from monitor.policy import PolicyOptions
from retrain import build, gate, gen_gate
from retrain.distil import DistilArgs
from retrain.kto import KtoArgs
from retrain.sft import SftArgs
from retrain.sft_data import SftOptions
from retrain.train_args import TrainArgs
from tuneloop.settings_doc import BEGIN, END, SETTINGS_DOC, rows


def test_shared_and_component_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path))
    monkeypatch.setenv("TUNELOOP_API_MAX_BATCH_SIZE", "7")
    monkeypatch.setenv("TUNELOOP_RETRAIN_ALLOW_NEW_LABELS", "true")
    settings = Settings()
    assert settings.api.max_batch_size == 7
    assert settings.retrain.allow_new_labels is True
    assert settings.database_url == f"sqlite:///{tmp_path / 'tuneloop.db'}"
    assert settings.artifacts == tmp_path / "artifacts"


def test_production_refuses_missing_or_placeholder_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNELOOP_ENV", "production")
    for token in ("", "changeme", "short"):
        monkeypatch.setenv("TUNELOOP_ADMIN_TOKEN", token)
        with pytest.raises(ValueError, match="ADMIN_TOKEN"):
            Settings()
    monkeypatch.setenv("TUNELOOP_ADMIN_TOKEN", "a-long-random-secret-value")
    assert Settings().token == "a-long-random-secret-value"


def test_refusals_never_print_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNELOOP_ENV", "production")
    monkeypatch.setenv("TUNELOOP_ADMIN_TOKEN", "changeme")
    with pytest.raises(ValueError) as weak:
        Settings()
    assert "changeme" not in str(weak.value)
    monkeypatch.setenv("TUNELOOP_ADMIN_TOKEN", "a-long-random-secret-value")
    monkeypatch.setenv("TUNELOOP_API_OPEN", "true")
    with pytest.raises(ValueError, match="TUNELOOP_API_OPEN is for local development") as opened:
        Settings()
    assert "a-long-random-secret-value" not in str(opened.value)


def test_open_mode_is_off_by_default_and_allowed_in_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().api.open is False
    monkeypatch.setenv("TUNELOOP_API_OPEN", "true")
    assert Settings().api.open is True


def test_settings_doc_lists_every_setting_with_its_default() -> None:
    doc = (Path(__file__).parents[2] / SETTINGS_DOC).read_text()
    table = doc.split(BEGIN, 1)[1].split(END, 1)[0]
    for variable, default, _ in rows():
        assert f"| `{variable}` | `{default}` |" in table, variable


# Option dataclasses whose defaults tests and tools use, and the settings that fill them in
# production: (dataclass, settings class, {dataclass field: settings field} where names differ).
# Not compared: fields with no setting, and `learning_rate` (the settings' 0 is the options' None:
# the method's default) and SftArgs' `method` (the settings' auto is LoRA for generation).
SFT_RENAMED = {
    "batch_size": "sft_batch_size",
    "weight_decay": "sft_weight_decay",
    "lora_r": "sft_lora_r",
    "lora_alpha": "sft_lora_alpha",
    "lora_targets": "sft_lora_targets",
    "max_length": "sft_max_length",
    "max_seconds": "generation_max_seconds",
}
OPTION_DEFAULTS = [
    (TrainArgs, RetrainSettings, {}),
    (SftArgs, RetrainSettings, SFT_RENAMED),
    (
        KtoArgs,
        RetrainSettings,
        {
            **SFT_RENAMED,
            "beta": "kto_beta",
            "desirable_weight": "kto_desirable_weight",
            "undesirable_weight": "kto_undesirable_weight",
        },
    ),
    (SftOptions, RetrainSettings, {"holdout_share": "sft_holdout_share"}),
    (
        DistilArgs,
        RetrainSettings,
        {
            name: f"distil_{name}"
            for name in ("layers", "student", "temperature", "alpha", "learning_rate", "min_steps")
        }
        | {"throughput_texts": "distil_throughput_texts"},
    ),
    (DistilArgs, Settings, {}),  # the device, a shared setting
    # The monitor samples embeddings as it samples the other columns (`monitor.service`).
    (DriftOptions, MonitorSettings, {"embedding_max_rows": "max_rows"}),
    (PolicyOptions, MonitorSettings, {}),
    (SequentialOptions, CanarySettings, {}),
]
NOT_COMPARED = {"learning_rate", "method"}


@pytest.mark.parametrize(
    ("options", "settings", "renamed"), OPTION_DEFAULTS, ids=lambda o: getattr(o, "__name__", "")
)
def test_option_defaults_are_the_settings_defaults(
    options: type, settings: type[BaseSettings], renamed: dict[str, str]
) -> None:
    defaults = {f.name: f.default for f in fields(options) if f.default is not MISSING}
    compared = 0
    for name, default in defaults.items():
        setting = renamed.get(name, name)
        if name in NOT_COMPARED or setting not in settings.model_fields:
            continue
        compared += 1
        assert default == settings.model_fields[setting].default, (options.__name__, name)
    assert compared, options.__name__


# The gates' constants: the defaults of `decide` and `decide_generation` where a caller names
# none (the benchmarks, tests); the runs take the settings'.
GATE_DEFAULTS = [
    (gate.DEFAULT_MIN_GAIN, "min_gain"),
    (gate.DEFAULT_CONFIDENCE, "confidence"),
    (gate.DEFAULT_MAX_REGRESSION, "max_regression"),
    (gate.DEFAULT_MIN_HOLDOUT, "min_holdout"),
    (gate.DEFAULT_SECOND_LOOK_CONFIDENCE, "second_look_confidence"),
    (gen_gate.DEFAULT_MIN_GAIN, "rouge_min_gain"),
    (gen_gate.DEFAULT_CONFIDENCE, "rouge_confidence"),
    (gen_gate.DEFAULT_MAX_REGRESSION, "rouge_max_regression"),
    (gen_gate.DEFAULT_MIN_HOLDOUT, "rouge_min_holdout"),
    (build.DEFAULT_HOLDOUT_SHARE, "holdout_share"),
]


@pytest.mark.parametrize(("default", "setting"), GATE_DEFAULTS, ids=[s for _, s in GATE_DEFAULTS])
def test_gate_constants_are_the_settings_defaults(default: float, setting: str) -> None:
    assert default == RetrainSettings.model_fields[setting].default


def test_the_improve_trigger_waits_for_the_labels_the_default_holdout_needs() -> None:
    retrain = RetrainSettings.model_fields
    needed = retrain["min_holdout"].default / retrain["holdout_share"].default
    assert PolicyOptions().improve_labeled == math.ceil(round(needed, 6))

"""Adapter versions over one base: small artifacts, merged-equal outputs, swaps without reloads."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from core.registry import Registry
from core.runtime import adapters
from core.runtime.adapters import VersionLoader
from core.runtime.model import load_classifier
from core.runtime.predictor import ClassifierPredictor, Output, load_predictor
from core.settings import ApiSettings, Settings
from core.store.db import Database
from retrain.lora import merge_lora
from tests.factories import tiny_adapter, tiny_artifact

TEXTS = ["good great product", "awful broken lamp", "the chair is very nice", "bad"]


def score(output: Output) -> float:
    assert output.scores is not None
    return output.scores["positive"]


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_an_adapter_artifact_is_a_fraction_of_the_full_one(tmp_path: Path) -> None:
    base = tiny_artifact(tmp_path / "base")
    adapter = tiny_adapter(base, tmp_path / "adapter")
    assert (adapter / "adapter_model.safetensors").exists()
    assert not (adapter / "model.safetensors").exists()
    assert not (adapter / "tokenizer.json").exists()  # the base's tokenizer serves
    assert folder_bytes(adapter) < 0.25 * folder_bytes(base)


def test_an_adapter_version_predicts_as_its_merged_model(tmp_path: Path) -> None:
    base = tiny_artifact(tmp_path / "base")
    adapter = tiny_adapter(base, tmp_path / "adapter")
    eager = load_predictor(adapter, version="v2", device="cpu")
    assert eager._forward == eager._eager  # an adapter runs eagerly, never a frozen trace
    model, tokenizer, config = load_classifier(adapter)
    model.encoder = merge_lora(model.encoder)
    merged = ClassifierPredictor(
        model, tokenizer, version="m", labels=config.labels, device=torch.device("cpu")
    )
    merged.trace()
    plain = load_predictor(base, version="v1", device="cpu").predict(TEXTS)
    served = VersionLoader(device="cpu").load(adapter, version="v2").predict(TEXTS)
    for a, b, c, p in zip(eager.predict(TEXTS), merged.predict(TEXTS), served, plain, strict=True):
        assert a.scores and b.scores and c.scores and p.scores
        assert a.scores["positive"] == pytest.approx(b.scores["positive"], abs=1e-4)
        assert c.scores["positive"] == pytest.approx(b.scores["positive"], abs=1e-4)
    moved = [abs(score(a) - score(p)) for a, p in zip(served, plain, strict=True)]
    assert max(moved) > 1e-3  # the adapter is really applied


def counted_bases(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    loads: list[Path] = []
    real = adapters.load_base_encoder

    def counting(path: Path, **kwargs: object) -> object:
        loads.append(path)
        return real(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(adapters, "load_base_encoder", counting)
    return loads


def test_adapters_over_one_base_load_it_once_and_switch_per_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = counted_bases(monkeypatch)
    base = tiny_artifact(tmp_path / "base")
    v2 = tiny_adapter(base, tmp_path / "v2", seed=2)
    v3 = tiny_adapter(base, tmp_path / "v3", seed=3)
    alone = {
        v: load_predictor(p, version=v, device="cpu").predict(TEXTS)
        for v, p in [("v2", v2), ("v3", v3)]
    }
    loader = VersionLoader(device="cpu")
    p2 = loader.load(v2, version="v2")
    p3 = loader.load(v3, version="v3")
    assert loader.load(v2, version="v2") is p2  # a rollback finds it loaded
    assert loads == [base.resolve()]
    # Interleaved on threads: each forward runs with its own adapter, never the other's.
    results: dict[str, list[float]] = {"v2": [], "v3": []}

    def run(predictor: ClassifierPredictor) -> None:
        for _ in range(10):
            out = predictor.predict(TEXTS)
            results[predictor.version].append(
                max(
                    abs(o.scores["positive"] - a.scores["positive"])  # type: ignore[index]
                    for o, a in zip(out, alone[predictor.version], strict=True)
                )
            )

    threads = [threading.Thread(target=run, args=(p,)) for p in (p2, p3, p2, p3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results["v2"]) == len(results["v3"]) == 20
    assert max(results["v2"] + results["v3"]) < 1e-4
    assert loader.bases[base.resolve()].switches  # it switched, it did not reload


def serving_settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=sqlite_url,
        admin_token="t" * 20,
        device="cpu",
        api=ApiSettings(open=True, model_poll_seconds=0.05, log_flush_seconds=0.05),
    )


def register_adapters(registry: Registry, tmp_path: Path) -> None:
    """v1 a full tiny model; v2 and v3 adapters over it, written into staging as a run does."""
    source = tiny_artifact(tmp_path / "source")
    staged = registry.staging_dir()
    shutil.copytree(source, staged, dirs_exist_ok=True)
    v1 = registry.register(
        staged, task="classification", labels=["negative", "positive"], base_model="tiny-bert"
    )
    for seed in (2, 3):
        staged = tiny_adapter(Path(v1.artifact_path), registry.staging_dir(), seed=seed)
        registry.register(
            staged,
            task="classification",
            labels=["negative", "positive"],
            base_model="tiny-bert",
            parent="v1",
            params={"adapter_of": "v1"},
        )


def test_promoting_adapter_v3_over_v2_swaps_under_load_without_loading_the_base(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.app import create_app

    loads = counted_bases(monkeypatch)
    settings = serving_settings(tmp_path, sqlite_url)
    registry = Registry(Database(sqlite_url), settings.artifacts)
    register_adapters(registry, tmp_path)
    assert registry.get("v3").adapter_of == "v1"
    expected = {
        v: load_predictor(Path(registry.get(v).artifact_path), version=v, device="cpu")
        .predict(TEXTS[:2])[0]
        .scores
        for v in ("v2", "v3")
    }
    assert expected["v2"] != pytest.approx(expected["v3"], abs=1e-3)  # answers tell them apart
    registry.promote("v2")
    statuses: list[int] = []
    seen: list[str] = []
    scores: list[tuple[str, dict[str, float]]] = []
    # Per client thread: (when its request was sent, the version that answered it).
    answered: list[list[tuple[float, str]]] = [[] for _ in range(3)]
    with TestClient(create_app(settings)) as client:
        stop = threading.Event()

        def load(mine: list[tuple[float, str]]) -> None:
            while not stop.is_set():
                sent = time.monotonic()
                r = client.post("/v1/predict", json={"inputs": TEXTS[:2]})
                statuses.append(r.status_code)
                if r.status_code == 200:
                    body = r.json()
                    seen.append(body["model_version"])
                    mine.append((sent, body["model_version"]))
                    scores.append((body["model_version"], body["predictions"][0]["scores"]))

        threads = [threading.Thread(target=load, args=(mine,)) for mine in answered]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while "v2" not in seen:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        registry.promote("v3")
        while "v3" not in seen:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        registry.rollback()
        rolled_back = time.monotonic()

        def back_on_v2(mine: list[tuple[float, str]]) -> bool:
            """This client's newest answer to a request sent after the rollback is v2's."""
            after = [version for sent, version in mine if sent > rolled_back]
            return bool(after) and after[-1] == "v2"

        while not all(back_on_v2(mine) for mine in answered):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}
    assert set(seen) == {"v2", "v3"}
    for mine in answered:  # once back on v2, a client stays there
        after = [version for sent, version in mine if sent > rolled_back]
        assert after[after.index("v2") :] == ["v2"] * (len(after) - after.index("v2"))
    for version, got in scores:  # each answer was computed by the version it names
        assert got == pytest.approx(expected[version], abs=1e-4)
    assert len(loads) == 1  # the base once: promotion and rollback only switch adapters

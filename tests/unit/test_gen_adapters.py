"""Generation adapter versions over one base: small artifacts, merged-equal greedy tokens, each
engine step with its own adapter, swaps and rollbacks without loading the base again."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from core.registry import Registry
from core.runtime import textgen_adapters
from core.runtime.adapters import VersionLoader
from core.runtime.engine import Sampling, Sequence, generate
from core.runtime.generator import load_generator
from core.runtime.textgen import Generator, load_generation
from core.settings import ApiSettings, Settings
from core.store.db import Database
from tests.generators import tiny_gen_adapter, tiny_llama

PROMPTS = ["the quick brown fox", "what is the capital of france?", "one two three", "red"]
NEW = 8


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def tokens(generator: Generator) -> list[list[int]]:
    return [s.generated for s in generator.generate_texts(PROMPTS, max_new_tokens=NEW)]


def counted_bases(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    loads: list[Path] = []
    real = textgen_adapters.load_generator

    def counting(path: Path, **kwargs: object) -> object:
        loads.append(path)
        return real(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(textgen_adapters, "load_generator", counting)
    return loads


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("genadapter") / "v1", context=128)


def merged_generator(adapter: Path, dtype: torch.dtype) -> Generator:
    """The adapter folded into its base's weights, as a merging run would serve it."""
    model, tokenizer, _ = load_generator(adapter, dtype=dtype)
    return Generator(
        model=model.merge_and_unload(),  # type: ignore[operator]
        tokenizer=tokenizer,
        version="merged",
        kind="causal",
        context=128,
        device=torch.device("cpu"),
    )


def first_logits(generator: Generator) -> torch.Tensor:
    ids = torch.tensor([generator.encode(text=PROMPTS[0])])
    with torch.inference_mode():
        return generator.model(ids).logits.float()  # type: ignore[operator]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_an_adapter_generates_as_its_merged_model(
    llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype
) -> None:
    monkeypatch.setattr(textgen_adapters, "generation_dtype", lambda device: dtype)
    adapter = tiny_gen_adapter(llama, tmp_path / "v2", seed=2)
    assert {p.name for p in adapter.iterdir()} == {
        "adapter_model.safetensors",
        "adapter_config.json",
        "tuneloop.json",
    }  # no base weights, no tokenizer: the base's serve
    assert folder_bytes(adapter) < 0.25 * folder_bytes(llama)
    served = VersionLoader(device="cpu").load(adapter, version="v2")
    assert isinstance(served, Generator)
    merged = merged_generator(adapter, dtype)
    eager, folded = first_logits(served), first_logits(merged)
    if dtype == torch.float32:  # the same greedy tokens; bf16 rounds the folded weights apart
        assert tokens(served) == tokens(merged)
        assert torch.allclose(eager, folded, atol=1e-4)
    else:
        assert (eager - folded).norm() < 0.03 * folded.norm(), (
            eager - folded
        ).norm() / folded.norm()
    plain = first_logits(load_generation(llama, version="v1", device="cpu"))
    assert (eager - plain).abs().max() > 0.5  # the adapter is really applied


def test_engines_of_two_adapters_take_turns_each_step_on_its_own_adapter(
    llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = counted_bases(monkeypatch)
    paths = {v: tiny_gen_adapter(llama, tmp_path / v, seed=s) for v, s in (("v2", 2), ("v3", 3))}
    alone = {v: tokens(load_generation(p, version=v, device="cpu")) for v, p in paths.items()}
    assert alone["v2"] != alone["v3"]
    loader = VersionLoader(device="cpu")
    gens = {v: loader.load(p, version=v) for v, p in paths.items()}
    assert loader.load(paths["v2"], version="v2") is gens["v2"]  # a rollback finds it loaded
    assert loads == [llama.resolve()]

    def seqs() -> list[Sequence]:
        return [
            Sequence(str(i), gens["v2"].encode(text=p), Sampling(max_new_tokens=NEW))  # type: ignore[attr-defined]
            for i, p in enumerate(PROMPTS)
        ]

    # Step by step in turn: every step switches, and each KV cache goes on under its own adapter.
    engines = {v: g.engine() for v, g in gens.items()}  # type: ignore[attr-defined]
    running = {v: seqs() for v in engines}
    for v, engine in engines.items():
        for seq in running[v]:
            engine.add(seq)
    while any(e.has_work for e in engines.values()):
        for engine in engines.values():
            engine.step()
    for v in engines:
        assert [s.generated for s in running[v]] == alone[v]
    # And on threads, as a champion's and a canary's schedulers drive them.
    results: dict[str, list[list[list[int]]]] = {"v2": [], "v3": []}

    def drive(version: str) -> None:
        for _ in range(3):
            done = generate(gens[version].engine(), seqs())  # type: ignore[attr-defined]
            results[version].append([s.generated for s in done])

    threads = [threading.Thread(target=drive, args=(v,)) for v in ("v2", "v3", "v2", "v3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["v2"] == [alone["v2"]] * 6 and results["v3"] == [alone["v3"]] * 6
    switches = loader.bases[llama.resolve()].switches
    assert len(switches) >= 2 * NEW  # it switched per step, it never reloaded
    assert loads == [llama.resolve()]


def register_adapters(registry: Registry, llama: Path) -> None:
    """v1 the tiny Llama; v2 and v3 adapters over it, written into staging as a run does."""
    staged = registry.staging_dir()
    shutil.copytree(llama, staged, dirs_exist_ok=True)
    v1 = registry.register(staged, task="generation", labels=[], base_model="tiny")
    for seed in (2, 3):
        staged = tiny_gen_adapter(Path(v1.artifact_path), registry.staging_dir(), seed=seed)
        registry.register(
            staged,
            task="generation",
            labels=[],
            base_model="tiny",
            parent="v1",
            params={"adapter_of": "v1"},
        )


def test_promotion_and_rollback_between_adapters_serve_each_own_tokens_loading_no_base(
    llama: Path, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.app import create_app

    loads = counted_bases(monkeypatch)
    settings = Settings(
        home=tmp_path,
        database_url=sqlite_url,
        admin_token="t" * 20,
        device="cpu",
        api=ApiSettings(open=True, model_poll_seconds=0.05, log_flush_seconds=0.05),
    )
    registry = Registry(Database(sqlite_url), settings.artifacts)
    register_adapters(registry, llama)
    expected = {
        v: load_generation(Path(registry.get(v).artifact_path), version=v, device="cpu")
        .generate_texts(PROMPTS[:1], max_new_tokens=NEW)[0]
        .text
        for v in ("v2", "v3")
    }
    assert expected["v2"] != expected["v3"]  # answers tell them apart
    registry.promote("v2")
    statuses: list[int] = []
    seen: list[tuple[str, str]] = []
    with TestClient(create_app(settings)) as client:
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                r = client.post("/v1/generate", json={"inputs": PROMPTS[:1], "max_new_tokens": NEW})
                statuses.append(r.status_code)
                if r.status_code == 200:
                    body = r.json()
                    seen.append((body["model_version"], body["generations"][0]["text"]))

        def wait_for(version: str) -> None:
            deadline = time.monotonic() + 30
            while not seen or seen[-1][0] != version:
                assert time.monotonic() < deadline
                time.sleep(0.02)

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        wait_for("v2")
        registry.promote("v3")
        wait_for("v3")
        registry.rollback()
        wait_for("v2")
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}
    assert {v for v, _ in seen} == {"v2", "v3"}
    for version, text in seen:  # each answer was computed by the version it names
        assert text == expected[version]
    assert len(loads) == 1  # the base once: promotion and rollback only switch adapters

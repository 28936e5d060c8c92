"""The README's commands run: each `curl` and `tuneloop` line of its code blocks against what
`make run` starts, `tuneloop up` (api, worker and beat, the default classifier), and a served tiny
generator for the generation lines, with placeholders filled in from the answers before them, the
way a newcomer would paste them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.generators import tiny_llama
from tests.integration.server import run_cli, serving, tuneloop_env
from tuneloop.processes import free_port, spawn, stop, tuneloop_command, wait_ready

ROOT = Path(__file__).resolve().parents[2]
# Lines that need what a first session does not have, each covered elsewhere: a trained v2 to
# promote and a previous champion to roll back to (test_promotion, test_retrain_loop), and the
# set-up a fixture does itself.
NEEDS_MORE = ("models promote", "models rollback", "v2/promote", " init")


def readme_commands() -> list[str]:
    """Every `curl` and `.venv/bin/tuneloop` line of the README's indented code blocks."""
    lines = (ROOT / "README.md").read_text().splitlines()
    found = [line.strip() for line in lines if line.startswith("    ")]
    found = [c for c in found if c.startswith(("curl ", ".venv/bin/tuneloop "))]
    return [c for c in found if not any(skip in c for skip in NEEDS_MORE)]


COMMANDS = readme_commands()


def shell(command: str, *, base: str, env: dict[str, str]) -> str:
    """Run a README line as pasted: its host made this server's, its CLI this interpreter's."""
    command = command.replace("localhost:8000", base.removeprefix("http://"))
    command = command.replace(".venv/bin/tuneloop", f"{sys.executable} -m tuneloop.cli")
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """`tuneloop up` as `make run` starts it (open mode on 127.0.0.1), in a fresh home."""
    home = tmp_path_factory.mktemp("readme-up")
    env = tuneloop_env(home, f"sqlite:///{home / 'tuneloop.db'}")
    port = free_port()
    proc = spawn(tuneloop_command(["up", "--port", str(port)]), env=env, log=home / "up.log")
    base = f"http://127.0.0.1:{port}"

    def alive() -> None:
        assert proc.poll() is None, (home / "up.log").read_text()

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_ready(ready, alive=alive, timeout=300), (home / "up.log").read_text()
        yield base, env
    finally:
        # Ctrl-C's path: a clean stop, however long a busy CPU takes to stop three processes.
        assert stop([proc], grace=60) == [0], (home / "up.log").read_text()
    assert "Traceback" not in (home / "up.log").read_text()


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A served tiny Llama and its environment."""
    home = tmp_path_factory.mktemp("readme-gen")
    model = tiny_llama(home / "tiny-llama", context=512)
    env = tuneloop_env(home, f"sqlite:///{home / 'tuneloop.db'}")
    run_cli("init", "--task", "generation", "--model", str(model), env=env)
    with serving(env, home / "api.log") as base:
        yield base, env


def test_the_readme_has_the_commands_it_is_tested_by() -> None:
    routes = " ".join(COMMANDS)
    for route in ("/v1/predict", "/v1/feedback", "/v1/generate", "/v1/monitor/check"):
        assert route in routes, route
    assert any("tuneloop monitor check" in c for c in COMMANDS)


def test_every_readme_command_runs_against_a_real_server(
    up: tuple[str, dict[str, str]], generator: tuple[str, dict[str, str]]
) -> None:
    api, classifier_env = up
    filled: dict[str, str] = {}  # placeholder -> value, from the answers so far
    for command in COMMANDS:
        generation = "/v1/generate" in command or "preferred_output" in command
        base, env = generator if generation else (api, classifier_env)
        command = re.sub(r"<an id[^>]*>", filled.get(base, "missing"), command)
        command = command.replace("<that key>", filled.get("key", "missing"))
        out = shell(command, base=base, env=env)
        if "keys create" in command:
            filled["key"] = out.strip().splitlines()[-1]
        elif "retrain --wait" in command:  # the worker of `up` ran it to a verdict
            assert re.search(r"\b(promoted|rejected)\b", out), out
        elif '"stream": true' in command:
            assert "event: finish" in out, out
        elif command.startswith("curl"):
            body = json.loads(out)
            assert not (isinstance(body, dict) and set(body) == {"detail"}), (command, body)
            answers = (
                body.get("predictions") or body.get("generations")
                if isinstance(body, dict)
                else None
            )
            if answers:
                filled[base] = answers[0]["id"]

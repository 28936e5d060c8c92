"""The README's commands run: each `curl` and `tuneloop` line of its code blocks against a real
server (the default classifier, and a tiny generator for the generation lines), with its
placeholders filled in from the answers before it, the way a newcomer would paste them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.generators import tiny_llama
from tests.integration.server import run_cli, serving, tuneloop_env

ROOT = Path(__file__).resolve().parents[2]
# Lines that need what these servers do not have, each covered elsewhere: a worker to finish a
# run (test_retrain_loop), a trained v2 to promote and a previous champion to roll back to
# (test_promotion), and the set-up a fixture does itself.
NEEDS_MORE = ("retrain --wait", "models promote", "models rollback", "v2/promote", " init")


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


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
def test_every_readme_command_runs_against_a_real_server(
    api: str, api_home: Path, generator: tuple[str, dict[str, str]]
) -> None:
    classifier_env = tuneloop_env(api_home, f"sqlite:///{api_home / 'tuneloop.db'}")
    filled: dict[str, str] = {}  # placeholder -> value, from the answers so far
    for command in COMMANDS:
        generation = "/v1/generate" in command or "preferred_output" in command
        base, env = generator if generation else (api, classifier_env)
        command = re.sub(r"<an id[^>]*>", filled.get(base, "missing"), command)
        command = command.replace("<that key>", filled.get("key", "missing"))
        out = shell(command, base=base, env=env)
        if "keys create" in command:
            filled["key"] = out.strip().splitlines()[-1]
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

"""Every Nordflow command the runbooks show exists: `<command> --help` answers, and knows
every option the runbook uses (code blocks and inline code alike)."""

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from nordflow_local.stack import SERVICES

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted((ROOT / "docs" / "runbooks").glob("*.md"))
BIN = Path(sys.executable).parent
PROGRAMS = {*SERVICES, "nordflow-local"}
WORD = re.compile(r"[a-z][a-z0-9_-]*")


def commands(text: str) -> list[str]:
    """Command lines in ```sh blocks and in inline code that start with a Nordflow program."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        found += [line.strip() for line in block.splitlines()]
    found += re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    out = []
    for line in found:
        words = line.split()
        if not words:
            continue
        if words[0] in PROGRAMS or line.startswith("python -m nordflow_local.chaos"):
            out.append(line)
    return out


def split(line: str) -> tuple[list[str], list[str]]:
    """The command path (program and subcommands) and the options the line uses."""
    tokens = shlex.split(line.replace("<", "'<").replace(">", ">'"))
    if tokens[:2] == ["python", "-m"]:
        path, rest = [sys.executable, "-m", tokens[2]], tokens[3:]
    else:
        path, rest = [str(BIN / tokens[0])], tokens[1:]
    for token in rest:
        if not WORD.fullmatch(token):
            break
        path.append(token)
    options = [t.split("=", 1)[0] for t in rest if t.startswith("-")]
    return path, options


@functools.cache
def help_text(path: tuple[str, ...]) -> str:
    result = subprocess.run(
        [*path, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": str(BIN), "COLUMNS": "200"},
    )
    assert result.returncode == 0, f"{' '.join(path)} --help: {result.stderr[-500:]}"
    return result.stdout


CASES = [(rb.name, line) for rb in RUNBOOKS for line in commands(rb.read_text(encoding="utf-8"))]


def test_the_runbooks_exist_and_show_commands():
    names = {rb.name for rb in RUNBOOKS}
    assert {
        "stuck-consumer.md",
        "dead-letter-replay.md",
        "failed-job.md",
        "factoring-window-rerun.md",
        "encryption-key-rotation.md",
    } <= names
    assert len(CASES) >= 20


@pytest.mark.parametrize(("runbook", "line"), CASES)
def test_each_command_exists_with_its_options(runbook, line):
    path, options = split(line)
    text = help_text(tuple(path))
    for option in options:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), (
            f"{runbook}: `{line}`: {option} is not an option of {' '.join(path[-3:])}"
        )

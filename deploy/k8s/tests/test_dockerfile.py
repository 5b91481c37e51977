"""Check the one Dockerfile statically for every service: what it copies, installs and runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO_ROOT / "Dockerfile"
# Every directory under services/ with a pyproject.toml is built with SERVICE=<directory>.
SERVICES = tuple(sorted(p.parent.name for p in (REPO_ROOT / "services").glob("*/pyproject.toml")))
HTTP_PORT = 8080
# The uid the image creates and the Deployments run as.
SERVICE_UID = 10001
BUILD_ARG = "SERVICE"
# The image's record of its service, which the entrypoint execs.
SERVICE_ENV = "NORDFLOW_SERVICE"
REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")

Instruction = tuple[str, str]


# ---------------------------------------------------------------------------- helpers


def instructions() -> list[Instruction]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert not pending, "dangling line continuation"
    pairs = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        pairs.append((instruction.upper(), " ".join(args.split())))
    return pairs


def stages() -> list[list[Instruction]]:
    """The instructions before the first FROM (global ARGs), then one list per stage."""
    result: list[list[Instruction]] = [[]]
    for name, args in instructions():
        if name == "FROM":
            result.append([])
        result[-1].append((name, args))
    return result


def build(service: str) -> list[Instruction]:
    """The instructions as a build with --build-arg SERVICE=<service> sees them."""
    return [(name, args.replace(f"${{{BUILD_ARG}}}", service)) for name, args in instructions()]


def args_of(pairs: list[Instruction], name: str) -> list[str]:
    return [args for instruction, args in pairs if instruction == name]


def copied(pairs: list[Instruction]) -> set[str]:
    """Sources of the COPY instructions that read the build context (not another stage)."""
    sources: set[str] = set()
    for name, args in pairs:
        if name == "COPY" and not args.startswith("--from"):
            sources.update(args.split()[:-1])
    return sources


def workspace_packages() -> dict[str, tuple[str, list[str]]]:
    """Workspace member name -> (path relative to the repo root, its dependency names)."""
    root = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages: dict[str, tuple[str, list[str]]] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for path in sorted(REPO_ROOT.glob(pattern)):
            if (path / "pyproject.toml").is_file():
                project = tomllib.loads((path / "pyproject.toml").read_text())["project"]
                deps = []
                for requirement in project.get("dependencies", []):
                    match = REQUIREMENT_NAME.match(requirement)
                    assert match, f"{path}: unparsable requirement {requirement!r}"
                    deps.append(match.group(0))
                packages[project["name"]] = (path.relative_to(REPO_ROOT).as_posix(), deps)
    return packages


def workspace_closure(package: str) -> set[str]:
    """Paths of a workspace package and every workspace package it depends on, transitively."""
    packages = workspace_packages()
    paths: set[str] = set()
    pending = [package]
    while pending:
        path, deps = packages[pending.pop()]
        if path not in paths:
            paths.add(path)
            pending.extend(d for d in deps if d in packages)
    return paths


def packages_in(sources: set[str]) -> set[str]:
    """Workspace package directories that copying these sources brings into the image."""
    members = {path for path, _ in workspace_packages().values()}
    return {m for m in members if any(f"{m}/".startswith(s.rstrip("/") + "/") for s in sources)}


def dockerignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex (Go filepath.Match plus `**` for any directories)."""
    out = ""
    i = 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves out this path (or a directory holding it)."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = pattern_regex(pattern.lstrip("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            result = not negated
    return result


# ---------------------------------------------------------------------------- the file


def test_service_is_a_build_argument_of_every_stage_that_uses_it() -> None:
    # An ARG declared before the first FROM is visible only in FROM lines; each stage
    # that reads SERVICE must declare it again, or it is silently empty there.
    global_args, *build_stages = stages()
    assert BUILD_ARG in args_of(global_args, "ARG")
    for stage in build_stages:
        declared = False
        for name, args in stage:
            if name == "ARG" and args.split("=")[0] == BUILD_ARG:
                declared = True
            elif name != "FROM" and BUILD_ARG in VARIABLE.findall(args):
                assert declared, f"{stage[0][1]}: {name} {args} reads {BUILD_ARG} undeclared"


def test_image_shape() -> None:
    pairs = instructions()
    assert args_of(pairs, "EXPOSE") == [str(HTTP_PORT)]
    assert args_of(pairs, "USER") == [f"{SERVICE_UID}:{SERVICE_UID}"]
    build_args = args_of(pairs, "ARG")
    assert any(a.startswith("PYTHON_IMAGE=python:3.11-slim") for a in build_args)
    assert any(a.startswith("UV_IMAGE=ghcr.io/astral-sh/uv:") for a in build_args)
    assert BUILD_ARG in build_args, "SERVICE has no default: every build names its service"
    froms = args_of(pairs, "FROM")
    assert [f.split()[-1] for f in froms] == ["uv", "builder", "runtime"]
    # The runtime stage gets the virtualenv only.
    runtime = stages()[-1]
    assert args_of(runtime, "COPY") == ["--from=builder /app/.venv /app/.venv"]


def test_entrypoint_execs_the_service_named_at_build_time() -> None:
    runtime = stages()[-1]
    env = " ".join(args_of(runtime, "ENV"))
    assert f"{SERVICE_ENV}=${{{BUILD_ARG}}}" in env.split()
    [entrypoint] = [json.loads(a) for a in args_of(runtime, "ENTRYPOINT")]
    shell, flag, script, *rest = entrypoint
    assert (shell, flag) == ("/bin/sh", "-c")
    # exec: the console script replaces the shell as PID 1 and receives SIGTERM itself.
    assert re.fullmatch(rf'exec "\$\{{?{SERVICE_ENV}\}}?" "\$@"', script), script
    assert len(rest) == 1, "one $0 for the shell, then CMD or the pod's args"
    assert [json.loads(a) for a in args_of(runtime, "CMD")] == [["run"]]


# ---------------------------------------------------------------------------- per service


@pytest.mark.parametrize("svc", SERVICES)
def test_dockerfile_installs_the_service_and_its_workspace_packages(svc: str) -> None:
    pairs = build(svc)
    syncs = [i for i, (name, args) in enumerate(pairs) if name == "RUN" and "uv sync" in args]
    assert len(syncs) == 2, "a dependencies layer, then a project layer"
    for i in syncs:
        # RUN sees SERVICE from the environment, so the shell expands it.
        command = pairs[i][1].replace(f"${BUILD_ARG}", svc)
        for flag in ("--frozen", "--no-dev", "--no-editable", f"--package {svc}"):
            assert flag in command, f"{svc}: `{flag}` missing from uv sync"
    assert "--no-install-workspace" in pairs[syncs[0]][1]

    # Manifests before the dependency layer, whole directories before the project layer,
    # for this service and every workspace package it depends on (read from pyproject).
    closure = workspace_closure(svc)
    assert f"services/{svc}" in closure
    dependency_layer = copied(pairs[: syncs[0]])
    project_layer = copied(pairs[syncs[0] : syncs[1]])
    assert {"pyproject.toml", "uv.lock", ".python-version"} <= dependency_layer
    manifests = {s.removesuffix("/pyproject.toml") for s in dependency_layer} - {"pyproject.toml"}
    assert closure <= manifests, f"{svc}: no manifest for {sorted(closure - manifests)}"
    in_image = packages_in(project_layer)
    assert closure <= in_image, f"{svc}: sources missing for {sorted(closure - in_image)}"
    # Every package whose sources are copied had its manifest in the dependency layer.
    assert in_image <= manifests, f"{svc}: {sorted(in_image - manifests)} without manifest"
    other_services = {f"services/{s}" for s in SERVICES if s != svc}
    assert not in_image & other_services, f"{svc}: copies another service"


@pytest.mark.parametrize("svc", SERVICES)
def test_what_the_dockerfile_copies_exists_and_is_in_the_context(svc: str) -> None:
    patterns = dockerignore_patterns()
    for source in copied(build(svc)):
        assert (REPO_ROOT / source).exists(), f"{svc}: COPY {source}: no such path"
        assert not ignored(source, patterns), f"{svc}: COPY {source}: in .dockerignore"
    # The files each package's wheel is built from are in the build context.
    for package in workspace_closure(svc):
        project = tomllib.loads((REPO_ROOT / package / "pyproject.toml").read_text())
        hatch = project.get("tool", {}).get("hatch", {})
        wheel = hatch.get("build", {}).get("targets", {}).get("wheel", {})
        for source_dir in wheel.get("packages", ["src"]):
            root = REPO_ROOT / package / source_dir
            assert root.is_dir(), f"{package}: wheel package {source_dir} missing"
            for path in root.rglob("*"):
                relative = path.relative_to(REPO_ROOT).as_posix()
                if path.is_file() and "__pycache__" not in path.parts:
                    assert not ignored(relative, patterns), f"{relative}: in .dockerignore"


@pytest.mark.parametrize("svc", SERVICES)
def test_entrypoint_resolves_to_the_console_script(svc: str) -> None:
    project = tomllib.loads((REPO_ROOT / "services" / svc / "pyproject.toml").read_text())
    assert project["project"]["name"] == svc, "uv sync --package <directory name>"
    scripts = project["project"].get("scripts", {})
    package = svc.replace("-", "_")
    assert scripts.get(svc, "").startswith(f"{package}."), f"{svc}: console script {svc}"
    assert (REPO_ROOT / "services" / svc / "src" / package).is_dir()


@pytest.mark.parametrize("svc", SERVICES)
def test_entrypoint_runs_the_console_script(svc: str) -> None:
    # The image's ENTRYPOINT, run here against this environment's console scripts (the
    # workspace installs them next to the interpreter, as the image does in /app/.venv/bin).
    [entrypoint] = [json.loads(a) for a in args_of(stages()[-1], "ENTRYPOINT")]
    scripts = Path(sys.executable).parent
    result = subprocess.run(
        [*entrypoint, "--help"],
        env={SERVICE_ENV: svc, "PATH": f"{scripts}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.lower().startswith(f"usage: {svc} "), result.stdout
    # CMD and the init container's args are subcommands of the script.
    for command in ("run", "migrate"):
        assert command in result.stdout, f"{svc}: no `{command}` subcommand"


def test_dockerignore_keeps_the_workspace_and_drops_local_state() -> None:
    patterns = dockerignore_patterns()
    assert {".git", "**/.venv"} <= set(patterns)
    for needed in ("pyproject.toml", "uv.lock", ".python-version", "shared", "services"):
        assert not ignored(needed, patterns), needed
    for dropped in (".git", "services/mapper/.venv", "services/mapper/tests", "deploy/k8s"):
        assert ignored(dropped, patterns), dropped
    assert "*" not in patterns, "an allow-list would silently drop new workspace members"


def test_no_service_keeps_a_dockerfile_of_its_own() -> None:
    copies = sorted(
        p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("services/*/Dockerfile")
    )
    assert not copies, f"build every service from the root Dockerfile: {copies}"

"""Where the repository, the local state directory and the download cache live."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

__all__ = ["default_cache_dir", "default_state_dir", "find_repo_root", "package_root"]

HOME_ENV = "NORDFLOW_HOME"


def _is_workspace_root(directory: Path) -> bool:
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return "workspace" in data.get("tool", {}).get("uv", {})


def find_repo_root(start: Path | None = None) -> Path:
    """The uv workspace root: `$NORDFLOW_HOME`, else the nearest ancestor declaring one."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).resolve()
    origins = [start] if start is not None else [Path(__file__).resolve(), Path.cwd()]
    for origin in origins:
        for directory in [origin, *origin.parents]:
            if _is_workspace_root(directory):
                return directory
    raise RuntimeError(
        "cannot find the Nordflow repository (a pyproject.toml with [tool.uv.workspace]) "
        f"above {origins[0]}; set {HOME_ENV} to its path"
    )


def package_root() -> Path:
    """The `deploy/local` directory of this package (holds the committed Kafka POM)."""
    return Path(__file__).resolve().parents[2]


def default_state_dir() -> Path:
    """`<repo>/.local`: pids, logs, data and the env file of the local stack."""
    return find_repo_root() / ".local"


def default_cache_dir() -> Path:
    """`<repo>/.local/cache`: downloaded artefacts that survive `down` (Kafka jars)."""
    return find_repo_root() / ".local" / "cache"

"""Fixtures for the manifest render tests: the pinned kustomize binary and rendered targets."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

K8S_DIR = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = K8S_DIR / "install-kustomize.sh"
# Every kustomize target that is deployed or reviewed: the base and every overlay.
TARGETS = (
    "base",
    *sorted(f"overlays/{p.parent.name}" for p in K8S_DIR.glob("overlays/*/kustomization.yaml")),
)

Manifest = dict[str, Any]


@pytest.fixture(scope="session")
def kustomize() -> Path:
    """The pinned kustomize, installed into <repo>/.local/bin on first use (never skipped)."""
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False, timeout=600
    )
    if result.returncode != 0:
        pytest.fail(f"install-kustomize.sh failed:\n{result.stderr}")
    binary = Path(result.stdout.strip().splitlines()[-1])
    assert binary.is_file(), f"install-kustomize.sh printed {binary}, which is not a file"
    return binary


@pytest.fixture(scope="session")
def render(kustomize: Path) -> Callable[[str], list[Manifest]]:
    """Render a target (relative to deploy/k8s) once per session and parse its documents."""
    cache: dict[str, list[Manifest]] = {}

    def _render(target: str) -> list[Manifest]:
        if target not in cache:
            result = subprocess.run(
                [str(kustomize), "build", str(K8S_DIR / target)],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            if result.returncode != 0:
                pytest.fail(f"kustomize build {target} failed:\n{result.stderr}")
            cache[target] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return cache[target]

    return _render


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    """Each kustomize target in turn."""
    return str(request.param)


@pytest.fixture
def manifests(target: str, render: Callable[[str], list[Manifest]]) -> list[Manifest]:
    """The rendered documents of the current target."""
    return render(target)

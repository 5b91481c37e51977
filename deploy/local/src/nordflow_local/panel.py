"""The control panel's address and sign-in tokens, for `make demo` to print at its end."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


def create_token(env: Mapping[str, str], *args: str) -> str | None:
    """A new control-panel token (`control-panel tokens create …`), or None if that failed."""
    command = Path(sys.executable).parent / "control-panel"
    try:
        done = subprocess.run(
            [str(command), "tokens", "create", *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def sign_in_lines(env: Mapping[str, str], tenants: Sequence[str]) -> list[str]:
    """Where the control panel is and a token to sign in with: an operator's, the first
    tenant's; or why not."""
    url = env.get("CONTROL_PANEL_URL")
    if not url:
        return ["The control panel is not running (see `make status`)."]
    operator = create_token(env, "--operator", "--name", "demo-operator")
    lines = [f"Control panel: {url}/  (sign in with a token; the API is {url}/api/v1)"]
    if operator:
        lines.append(f"  operator, every tenant:   {operator}")
    if tenants:
        token = create_token(env, tenants[0], "--name", "demo")
        if token:
            lines.append(f"  tenant {tenants[0]}:{' ' * max(1, 18 - len(tenants[0]))}{token}")
    if len(lines) == 1:
        lines.append("  (creating a token failed: run `control-panel tokens create --operator`)")
    lines.append(f'  curl -H "Authorization: Bearer <token>" {url}/api/v1/invoices')
    return lines

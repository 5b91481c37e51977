"""Every common setting is in the one table of them in docs/architecture.md, with its default."""

from __future__ import annotations

import re
from pathlib import Path

from nordflow_runtime.settings import ServiceSettings
from pydantic_core import PydanticUndefined

ARCHITECTURE = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"


def documented() -> dict[str, str]:
    """env variable → default, from the table of the section on the common settings."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Settings every service reads", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| ([^|]+) \|", section, flags=re.MULTILINE)
    return {name: default.strip().strip("`") for name, default in rows}


def test_every_common_setting_is_documented_with_its_default() -> None:
    table = documented()
    for name, field in ServiceSettings.model_fields.items():
        env = name.upper()
        assert env in table, f"{env} is missing from docs/architecture.md's settings table"
        if field.default is PydanticUndefined:
            assert table[env] == "required", env
        else:
            assert table[env] == str(field.default), env
    assert set(table) <= {n.upper() for n in ServiceSettings.model_fields}

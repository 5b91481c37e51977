"""``mapper references set | show`` on the real PostgreSQL (the service's schema, migrated)."""

from __future__ import annotations

import pytest
from mapper.entrypoints.cli import main
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration


def test_references_set_and_show_through_the_cli(
    fresh_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")  # the command never connects
    tenant = new_tenant()
    assert main(["references", "show", tenant]) == 0
    assert main(["references", "set", tenant, "--kind", "no_kid", "--kid-algorithm", "mod11"]) == 0
    assert main(["references", "show", tenant]) == 0
    assert main(["references", "set", tenant, "--kind", "factor_layout", "--layout", "dnb"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{tenant}: no policy (country defaults)",
        f"{tenant}: no_kid (mod11, variable length, no '-')",
        f"{tenant}: no_kid (mod11, variable length, no '-')",
    ]
    assert "factoring_number" in err

"""mapper's command line without a database: the command tree, and how ``references set``'s
options become a tenant's policy (storing it is tested on the real PostgreSQL)."""

from __future__ import annotations

import pytest
from mapper.domain.references import TenantReferencePolicy
from mapper.entrypoints import cli
from nordflow_references import KidAlgorithm, ReferenceKind


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> list[TenantReferencePolicy]:
    """The policies ``references set`` stores, kept in a list instead of the database."""
    policies: list[TenantReferencePolicy] = []

    async def save(policy: TenantReferencePolicy) -> None:
        policies.append(policy)

    monkeypatch.setattr(cli, "save_policy", save)
    return policies


def test_help_lists_every_command_references_included(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    commands = capsys.readouterr().out.split("Commands:")[1].split()
    assert {"run", "migrate", "dlq", "jobs", "references"} <= set(commands)
    assert cli.main(["references", "--help"]) == 0
    assert {"set", "show"} <= set(capsys.readouterr().out.split("Commands:")[1].split())


def test_the_options_build_the_policy(
    saved: list[TenantReferencePolicy], capsys: pytest.CaptureFixture[str]
) -> None:
    fixed = ["--kind", "se_ocr", "--ocr-control", "fixed_length", "--ocr-length", "12"]
    assert cli.main(["references", "set", "acme", *fixed]) == 0
    assert cli.main(["references", "set", "acme", *fixed, "--ocr-length", "20"]) == 0
    layout = ["--kind", "factor_layout", "--layout", "nordea_finans", "--factoring-number", "1234"]
    assert cli.main(["references", "set", "acme", *layout]) == 0
    kid = ["--kind", "no_kid", "--kid-algorithm", "mod11", "--kid-length", "8", "--kid-allow-dash"]
    assert cli.main(["references", "set", "acme", *kid]) == 0
    assert [p.policy.ocr_lengths for p in saved[:2]] == [(12,), (12, 20)]
    assert saved[3].policy.kind is ReferenceKind.NO_KID
    assert saved[3].policy.kid_algorithm is KidAlgorithm.MOD11
    assert (saved[3].policy.kid_length, saved[3].policy.kid_allow_dash) == (8, True)
    assert capsys.readouterr().out.splitlines() == [
        "acme: se_ocr (control fixed_length, length 12, no length digit)",
        "acme: se_ocr (control fixed_length, length 12 or 20, no length digit)",
        "acme: factor_layout (nordea_finans, factoring number 1234)",
        "acme: no_kid (mod11, length 8, '-' allowed)",
    ]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (["--kind", "se_ocr", "--ocr-length", "9"], "fixed-length"),
        (["--kind", "factor_layout", "--layout", "dnb"], "factoring_number"),
        (["--kind", "factor_layout", "--layout", "xx", "--factoring-number", "1"], "dnb"),
    ],
)
def test_a_policy_that_cannot_be_is_refused_with_exit_2(
    saved: list[TenantReferencePolicy],
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    reason: str,
) -> None:
    assert cli.main(["references", "set", "acme", *options]) == 2
    assert saved == []
    assert reason in capsys.readouterr().err


def test_a_missing_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")
    assert cli.main(["references", "show", "acme"]) == 2
    assert "setting DATABASE_URL" in capsys.readouterr().err

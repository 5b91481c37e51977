"""mapper command line: run, migrate, dlq, and the tenants' payment-reference policies."""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg
from nordflow_references import (
    LAYOUTS,
    KidAlgorithm,
    OcrControl,
    ReferenceKind,
    ReferencePolicy,
)
from nordflow_runtime.cli import service_main, settings_or_exit

from .app import create_app
from .config import Settings
from .domain.references import TenantReferencePolicy, load_policy, save_policy


def build_policy(args: argparse.Namespace) -> TenantReferencePolicy:
    """The policy the ``references set`` arguments describe; ValueError names what is wrong."""
    kind = ReferenceKind(args.kind)
    return TenantReferencePolicy(
        tenant_id=args.tenant,
        policy=ReferencePolicy(
            kind=kind,
            ocr_control=OcrControl(args.ocr_control),
            ocr_lengths=tuple(args.ocr_length or ()),
            ocr_length_digit=args.ocr_length_digit,
            kid_algorithm=KidAlgorithm(args.kid_algorithm),
            kid_length=args.kid_length,
            kid_allow_dash=args.kid_allow_dash,
            factor_layout=args.layout,
        ),
        factoring_number=args.factoring_number,
    )


async def _connect() -> asyncpg.Connection:
    app = create_app(settings_or_exit("mapper", Settings))
    await app.migrate()
    return await asyncpg.connect(
        app.settings.database_url.get_secret_value(),
        server_settings={"search_path": app.schema},
    )


async def _set(policy: TenantReferencePolicy) -> None:
    conn = await _connect()
    try:
        await save_policy(conn, policy)
    finally:
        await conn.close()


async def _show(tenant: str) -> TenantReferencePolicy | None:
    conn = await _connect()
    try:
        return await load_policy(conn, tenant)
    finally:
        await conn.close()


def references_parser() -> argparse.ArgumentParser:
    """``mapper references set | show``."""
    parser = argparse.ArgumentParser(prog="mapper references")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("set", help="create or replace a tenant's payment-reference policy")
    s.add_argument("tenant")
    s.add_argument(
        "--kind",
        required=True,
        choices=[k.value for k in ReferenceKind],
        help="none | se_ocr (Swedish OCR) | no_kid (Norwegian KID) | factor_layout",
    )
    s.add_argument(
        "--ocr-control",
        choices=[c.value for c in OcrControl],
        default=OcrControl.HARD.value,
        help="the OCR control level agreed with the bank (se_ocr)",
    )
    s.add_argument(
        "--ocr-length",
        type=int,
        action="append",
        help="an agreed fixed length (fixed_length control; give it once or twice)",
    )
    s.add_argument(
        "--ocr-length-digit", action="store_true", help="OCR references carry a length digit"
    )
    s.add_argument(
        "--kid-algorithm", choices=[a.value for a in KidAlgorithm], default="mod10", help="no_kid"
    )
    s.add_argument("--kid-length", type=int, help="the agreed KID length (no_kid)")
    s.add_argument(
        "--kid-allow-dash", action="store_true", help="accept '-' as the MOD11 check (no_kid)"
    )
    s.add_argument("--layout", choices=sorted(LAYOUTS), help="the factor's KID layout")
    s.add_argument("--factoring-number", help="the tenant's client number at the factor")
    show = sub.add_parser("show", help="print a tenant's payment-reference policy")
    show.add_argument("tenant")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``mapper run | migrate | dlq … | references set | references show``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "references":
        return service_main("mapper", create_app, argv)
    args = references_parser().parse_args(argv[1:])
    if args.command == "show":
        found = asyncio.run(_show(args.tenant))
        print(found.describe() if found else f"{args.tenant}: no policy (country defaults)")
        return 0
    try:
        policy = build_policy(args)
    except ValueError as exc:
        print(f"mapper references set: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_set(policy))
    print(policy.describe())
    return 0

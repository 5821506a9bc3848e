"""The `clipfunnel` command line: run, migrate, serve, token, revoke, demo.

The benchmark suite is not part of the installed package: run it from the repository with
`python -m bench`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from shared.auth import SCOPES, mint_token

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="ClipFunnel: attribution and conversion funnels for short-video and live commerce.",
)

DEMO_TENANT = "demo"


class Service(StrEnum):
    catalog = "catalog"
    attribution = "attribution"


class ServeTarget(StrEnum):
    catalog = "catalog"
    attribution = "attribution"
    ingest_worker = "ingest-worker"  # the ingest buffer's writer, without HTTP


class MigrateTarget(StrEnum):
    catalog = "catalog"
    attribution = "attribution"
    all = "all"


# Each service has its own settings class; the callers use what they read from it.
def _settings(service: Service):  # type: ignore[no-untyped-def]
    if service is Service.catalog:
        from services.catalog.settings import CatalogSettings

        return CatalogSettings()
    from services.attribution.config import AttributionSettings

    return AttributionSettings()


def migrate_service(service: Service) -> str:
    from services.launcher import migrate

    return migrate(service.value, str(_settings(service).database_url))


@app.command()
def migrate(
    target: Annotated[MigrateTarget, typer.Argument(help="Which service's database")],
) -> None:
    """Run `alembic upgrade head` on the service's configured database."""
    services = list(Service) if target is MigrateTarget.all else [Service(target.value)]
    for service in services:
        url = migrate_service(service)
        typer.echo(f"{service.value}: migrated to head ({_redact(url)})", err=True)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@app.command()
def serve(
    target: Annotated[
        ServeTarget,
        typer.Argument(
            help="catalog, attribution, or ingest-worker (the ingest buffer's writer alone)"
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default 8001 / 8002)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run one service (it expects its database migrated: see `clipfunnel migrate`)."""
    import uvicorn

    if target is ServeTarget.ingest_worker:
        from services.attribution.config import AttributionSettings
        from services.attribution.ingest_buffer.wiring import run_worker

        asyncio.run(run_worker(AttributionSettings()))
        return
    service = Service(target.value)

    chosen_port = port or (8001 if service is Service.catalog else 8002)
    factory = f"services.{service.value}.app:create_app"
    if workers > 1 and service is Service.attribution:
        refusal = embedded_store_refusal(workers)
        if refusal:
            typer.echo(refusal, err=True)
            raise typer.Exit(2)
    if workers > 1:
        # Several workers share one metrics view through prometheus-client's multiprocess mode.
        directory = Path(
            os.environ.setdefault(
                "PROMETHEUS_MULTIPROC_DIR", str(Path("var") / f"prometheus-{service.value}")
            )
        )
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=chosen_port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


def embedded_store_refusal(workers: int) -> str | None:
    """Why the attribution service cannot run ``workers`` processes, or None when it can.

    The embedded analytic store (chdb) opens its data directory in one process only.
    """
    from services.attribution.config import AttributionSettings

    settings = AttributionSettings()
    if workers <= 1 or settings.analytics != "clickhouse" or settings.clickhouse_url:
        return None
    return (
        f"--workers {workers}: the embedded analytic store runs in one process only. "
        "Run one worker, or point the service at a ClickHouse server with "
        "ATTRIBUTION_CLICKHOUSE_URL (or answer funnels from the database with "
        "ATTRIBUTION_ANALYTICS=sql)."
    )


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Tenant id the token acts for")],
    scopes: Annotated[str, typer.Option(help=f"Comma-separated: {', '.join(SCOPES)}")],
    ttl: Annotated[int | None, typer.Option(min=1, help="Lifetime in seconds")] = None,
) -> None:
    """Print a bearer token (and nothing else on stdout)."""
    settings = _settings(Service.catalog)
    try:
        value = mint_token(
            settings.secret,
            tenant,
            [s.strip() for s in scopes.split(",") if s.strip()],
            ttl_seconds=ttl,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(value)


@app.command()
def revoke(
    token_value: Annotated[str, typer.Argument(metavar="TOKEN", help="The token to revoke")],
) -> None:
    """Revoke a token in both services' databases (takes effect within a few seconds)."""
    from services.attribution.models import RevokedToken as AttributionRevokedToken
    from services.catalog.models import RevokedToken as CatalogRevokedToken
    from shared.auth import decode_token
    from shared.revocation import RevokedTable, revoke_token_id

    tables: dict[Service, RevokedTable] = {
        Service.catalog: CatalogRevokedToken,
        Service.attribution: AttributionRevokedToken,
    }
    settings = _settings(Service.catalog)
    principal = decode_token(settings.secret, token_value, now=0)
    for service in Service:
        asyncio.run(
            revoke_token_id(
                _settings(service).database_url,
                tables[service],
                principal.tenant_id,
                principal.token_id,
            )
        )
    typer.echo(f"revoked token {principal.token_id} of tenant {principal.tenant_id}", err=True)


def _load_demo(catalog_url: str, attribution_url: str, tenant: str, events: int, seed: int) -> None:
    """Post the demo month for ``tenant`` and print its summary (on stderr)."""
    from services.demo import load_demo

    admin = mint_token(_settings(Service.catalog).secret, tenant, ["admin"], ttl_seconds=3600)
    report = asyncio.run(
        load_demo(
            catalog_url=catalog_url,
            attribution_url=attribution_url,
            token=admin,
            events=events,
            seed=seed,
            operations=True,
        )
    )
    typer.echo(str(report), err=True)


@app.command()
def demo(
    catalog_url: Annotated[str, typer.Option()] = "http://127.0.0.1:8001",
    attribution_url: Annotated[str, typer.Option()] = "http://127.0.0.1:8002",
    events: Annotated[int, typer.Option(min=0, help="How many viewer events to post")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data)")] = 7,
    tenant: Annotated[str, typer.Option(help="Tenant to load the demo into")] = DEMO_TENANT,
) -> None:
    """Post a realistic month of short-video commerce through the public APIs."""
    _load_demo(catalog_url, attribution_url, tenant, events, seed)


@app.command()
def run(
    no_demo: Annotated[bool, typer.Option("--no-demo", help="Skip the demo data")] = False,
    catalog_port: Annotated[int, typer.Option()] = 8001,
    attribution_port: Annotated[int, typer.Option()] = 8002,
    demo_events: Annotated[int, typer.Option(help="Viewer events in the demo")] = 100_000,
) -> None:
    """Migrate, start both services on 127.0.0.1, load demo data, print URLs and a token."""
    from services.launcher import LaunchError, stack

    # The services read the configured databases and secret from this environment; the demo
    # load would bury the ready message under access logs (warnings still show).
    settings = {"CLIPFUNNEL_LOG_LEVEL": os.environ.get("CLIPFUNNEL_LOG_LEVEL", "WARNING")}
    for key, port in (
        ("ATTRIBUTION_CATALOG_URL", catalog_port),
        ("ATTRIBUTION_PUBLIC_URL", attribution_port),
    ):
        settings[key] = os.environ.setdefault(key, f"http://127.0.0.1:{port}")
    for service in Service:
        migrate_service(service)
    services = stack(settings=settings, ports=(catalog_port, attribution_port), isolated=False)
    catalog_url, attribution_url = services.catalog.url, services.attribution.url

    def on_sigterm(*_: object) -> None:
        services.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        services.start()
        if not no_demo:
            typer.echo("loading demo data…", err=True)
            _load_demo(catalog_url, attribution_url, DEMO_TENANT, demo_events, seed=7)
        ready_token = mint_token(
            _settings(Service.catalog).secret,
            DEMO_TENANT,
            [s for s in SCOPES if s != "catalog:sync"],
            ttl_seconds=30 * 86400,
        )
        typer.echo(
            "\nClipFunnel is running.\n"
            f"  catalog      {catalog_url}   (docs: {catalog_url}/docs)\n"
            f"  attribution  {attribution_url}   (docs: {attribution_url}/docs)\n"
            f"  dashboard    {attribution_url}/dashboard\n"
            f"  tenant       {DEMO_TENANT}\n"
            f"  token        {ready_token}\n"
            "Press Ctrl-C to stop.\n"
        )
        while services.alive():
            time.sleep(0.5)
        raise typer.Exit(1)
    except LaunchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass
    finally:
        services.stop()


def main() -> None:
    app()


if __name__ == "__main__":
    main()

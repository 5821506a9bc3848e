"""The `clipfunnel` command line: run, migrate, serve, token, revoke, demo."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import httpx
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


class MigrateTarget(StrEnum):
    catalog = "catalog"
    attribution = "attribution"
    all = "all"


def _settings(service: Service):  # type: ignore[no-untyped-def]
    if service is Service.catalog:
        from services.catalog.settings import CatalogSettings

        return CatalogSettings()
    from services.attribution.config import AttributionSettings

    return AttributionSettings()


def _migrations(service: Service):  # type: ignore[no-untyped-def]
    if service is Service.catalog:
        from services.catalog.app import MIGRATIONS

        return MIGRATIONS
    from services.attribution.app import MIGRATIONS as ATTRIBUTION_MIGRATIONS

    return ATTRIBUTION_MIGRATIONS


def migrate_service(service: Service) -> str:
    from shared.migrate import upgrade

    settings = _settings(service)
    upgrade(_migrations(service), settings.database_url)
    return str(settings.database_url)


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
    service: Annotated[Service, typer.Argument(help="catalog or attribution")],
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default 8001 / 8002)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run one service (it expects its database migrated: see `clipfunnel migrate`)."""
    import uvicorn

    chosen_port = port or (8001 if service is Service.catalog else 8002)
    factory = f"services.{service.value}.app:create_app"
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


@app.command()
def demo(
    catalog_url: Annotated[str, typer.Option()] = "http://127.0.0.1:8001",
    attribution_url: Annotated[str, typer.Option()] = "http://127.0.0.1:8002",
    events: Annotated[int, typer.Option(min=0, help="How many viewer events to post")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data)")] = 7,
    tenant: Annotated[str, typer.Option(help="Tenant to load the demo into")] = DEMO_TENANT,
) -> None:
    """Post a realistic month of short-video commerce through the public APIs."""
    from services.demo import load_demo

    settings = _settings(Service.catalog)
    admin = mint_token(settings.secret, tenant, ["admin"], ttl_seconds=3600)
    summary = asyncio.run(
        load_demo(
            catalog_url=catalog_url,
            attribution_url=attribution_url,
            token=admin,
            events=events,
            seed=seed,
        )
    )
    typer.echo(summary, err=True)


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with code {process.returncode} while starting")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} was not ready after {timeout:.0f}s")


@app.command()
def run(
    no_demo: Annotated[bool, typer.Option("--no-demo", help="Skip the demo data")] = False,
    catalog_port: Annotated[int, typer.Option()] = 8001,
    attribution_port: Annotated[int, typer.Option()] = 8002,
    demo_events: Annotated[int, typer.Option(help="Viewer events in the demo")] = 100_000,
) -> None:
    """Migrate, start both services on 127.0.0.1, load demo data, print URLs and a token."""
    catalog_url = f"http://127.0.0.1:{catalog_port}"
    attribution_url = f"http://127.0.0.1:{attribution_port}"
    env = dict(os.environ)
    env.setdefault("ATTRIBUTION_CATALOG_URL", catalog_url)
    env.setdefault("ATTRIBUTION_PUBLIC_URL", attribution_url)
    # The demo load would bury the ready message under access logs; warnings still show.
    env.setdefault("CLIPFUNNEL_LOG_LEVEL", "WARNING")
    os.environ.update({k: env[k] for k in ("ATTRIBUTION_CATALOG_URL", "ATTRIBUTION_PUBLIC_URL")})
    for service in Service:
        migrate_service(service)
    exe = [sys.executable, "-m", "services.cli"]
    children = [
        subprocess.Popen([*exe, "serve", "catalog", "--port", str(catalog_port)], env=env),
        subprocess.Popen([*exe, "serve", "attribution", "--port", str(attribution_port)], env=env),
    ]

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()

    def on_sigterm(*_: object) -> None:
        stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        _wait_ready(catalog_url, children[0])
        _wait_ready(attribution_url, children[1])
        settings = _settings(Service.catalog)
        if not no_demo:
            typer.echo("loading demo data…", err=True)
            from services.demo import load_demo

            admin = mint_token(settings.secret, DEMO_TENANT, ["admin"], ttl_seconds=3600)
            summary = asyncio.run(
                load_demo(
                    catalog_url=catalog_url,
                    attribution_url=attribution_url,
                    token=admin,
                    events=demo_events,
                    seed=7,
                )
            )
            typer.echo(summary, err=True)
        ready_token = mint_token(
            settings.secret,
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
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop()


@app.command(
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],  # --help goes to the benchmark's own parser
    },
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Run the benchmark suite: `make bench` does the same (`clipfunnel bench --help`)."""
    from bench.__main__ import main as run_benchmarks

    raise typer.Exit(run_benchmarks(list(ctx.args), prog="clipfunnel bench"))


def main() -> None:
    app()


if __name__ == "__main__":
    main()

"""The ``tether`` command: the server (``serve``, ``worker``) and the client commands.

The client commands live in :mod:`tether.cli.account` (login, users, groups, API keys),
:mod:`tether.cli.storage` (services, credentials, objects) and :mod:`tether.cli.records`
(metadata records and data sets); :mod:`tether.cli.common` holds what they share.
"""

from __future__ import annotations

import os

import click

from tether.cli.common import State, TetherGroup


@click.group(
    cls=TetherGroup,
    epilog="Exit codes: 0 ok, 1 error, 2 usage, 3 server unreachable, 4 not logged in or "
    "not allowed, 5 not found, 6 conflict or wrong state, 7 transfer or checksum failure.",
)
@click.option("--url", default=None, help="Tether server URL (else TETHER_URL or the login).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def main(ctx: click.Context, url: str | None, as_json: bool) -> None:
    """Tether: a federated catalog for write-once, read-mostly data objects."""
    state = ctx.ensure_object(State)
    state.url = url
    state.json = state.json or as_json
    ctx.call_on_close(state.close)


@main.command()
@click.option("--host", default=None, help="Address to listen on (TETHER_HOST; 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (TETHER_PORT; 8200).")
@click.option("--data-dir", default=None, help="Data directory (TETHER_DATA_DIR; ./tether-data).")
@click.option("--workers", type=int, default=None, help="Server processes (TETHER_WORKERS; 1).")
def serve(host: str | None, port: int | None, data_dir: str | None, workers: int | None) -> None:
    """Start the server (migrating the database and creating the admin on first start)."""
    # Server modules load only here: client commands start fast without them.
    import uvicorn

    from tether.core import prepare
    from tether.settings import Settings

    overrides = {"host": host, "port": port, "data_dir": data_dir, "workers": workers}
    settings = Settings.load(overrides)
    generated = prepare(settings)
    if generated:
        click.echo(
            f"Created the admin account. Username: admin  Password: {generated}\n"
            "This password is shown only once; set TETHER_ADMIN_PASSWORD to choose it."
        )
    # Worker processes load their settings from the environment; hand them the overrides.
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"TETHER_{key.upper()}"] = str(value)
    uvicorn.run(
        "tether.server.app:create_app_from_settings",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
    )


@main.command()
@click.option("--data-dir", default=None, help="Data directory (TETHER_DATA_DIR).")
@click.option("--once", is_flag=True, help="Run the due jobs once and exit.")
def worker(data_dir: str | None, once: bool) -> None:
    """Run background jobs (store deletions, cleanup of abandoned uploads)."""
    import signal
    import threading

    from tether.core import build, prepare
    from tether.jobs.worker import Worker
    from tether.settings import Settings

    settings = Settings.load({"data_dir": data_dir})
    prepare(settings)
    tether = build(settings)
    runner = Worker(tether)
    try:
        if once:
            runner.sweep()
            click.echo(f"ran {runner.run_due()} job(s)")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        runner.run_forever(stop)
    finally:
        tether.close()


def _register() -> None:
    from tether.cli import account, records, storage

    for module in (account, storage, records):
        for command in module.COMMANDS:
            main.add_command(command)


_register()

if __name__ == "__main__":
    main()

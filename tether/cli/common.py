"""What every client command of ``tether`` shares: the client, output, errors, progress.

Output: ``--json`` (on the group or on any command) prints JSON for scripts; otherwise
aligned plain tables. Progress bars (rate and ETA) are drawn on stderr only when stdout
is a terminal and JSON was not asked for.

Errors: a Tether error, a local file problem or an unreachable server is printed as one
line ``error: …`` on stderr, never a traceback, with an exit code telling its kind:

    1  any other error          4  not logged in / not allowed (401, 403)
    2  wrong usage (click)      5  not found (404)
    3  server unreachable       6  conflict or wrong state (409)
    7  transfer or checksum failure; 130 interrupted (run it again to resume)
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
import orjson

from tether.client import Client, ClientConfig
from tether.client.errors import ChecksumMismatch, ConnectionFailed, LocalFileError, TransferError
from tether.errors import Conflict, Forbidden, NotFound, TetherError, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES: list[tuple[type[TetherError], int]] = [
    (ConnectionFailed, 3),
    (Unauthorized, 4),
    (Forbidden, 4),
    (NotFound, 5),
    (ChecksumMismatch, 7),
    (TransferError, 7),
    (Conflict, 6),
]


class CliError(click.ClickException):
    """A one-line error with an exit code chosen by its kind."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        # click declares exit_code on the class; each instance here carries its own.
        setattr(self, "exit_code", exit_code)  # noqa: B010

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def exit_code_for(exc: TetherError) -> int:
    return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 1)


class TetherGroup(click.Group):
    """A click group that turns Tether errors into one-line messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TetherError as exc:
            raise CliError(exc.message, exit_code_for(exc)) from None
        except KeyboardInterrupt:
            raise CliError("interrupted; run the same command again to resume", 130) from None


@dataclass
class State:
    """The command line's shared state (``ctx.obj``)."""

    url: str | None = None
    json: bool = False
    config: ClientConfig | None = None
    _client: Client | None = field(default=None, repr=False)

    def client_config(self) -> ClientConfig:
        if self.config is None:
            self.config = ClientConfig.load()
        return self.config

    def client(self) -> Client:
        """The client for this command: ``--url``/config/saved session, logged in if saved."""
        if self._client is None:
            self._client = Client(self.url, config=self.client_config())
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def state() -> State:
    ctx = click.get_current_context()
    obj = ctx.find_object(State)
    if obj is None:
        obj = ctx.ensure_object(State)
    return obj


def json_option(func: F) -> F:
    """Adds ``--json`` to a command (the group's ``--json`` works too)."""

    def set_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(State).json = True

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=set_json,
        help="Print JSON for scripts instead of a table.",
    )(func)


def wants_json() -> bool:
    return state().json


def print_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def stream_json_array(items: Iterable[Any]) -> int:
    """Prints a JSON array item by item (constant memory for any number); the count."""
    out = sys.stdout
    count = 0
    out.write("[")
    for item in items:
        out.write(",\n" if count else "\n")
        out.write(orjson.dumps(item).decode())
        count += 1
    out.write("\n]\n" if count else "]\n")
    out.flush()
    return count


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Aligned plain columns with an upper-case header; no row, no header."""
    if not rows:
        return
    table = [[c.upper() for c in columns]] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def print_doc(doc: Mapping[str, Any]) -> None:
    """One resource as ``key: value`` lines (human) or JSON."""
    if wants_json():
        print_json(doc)
        return
    skip = {"operations"}
    width = max((len(k) for k in doc if k not in skip), default=0)
    for key, value in doc.items():
        if key not in skip:
            click.echo(f"{key.ljust(width)}  {cell(value)}")


def echo_lines(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line)


def output(data: Any, human: Callable[[], None]) -> None:
    if wants_json():
        print_json(data)
    else:
        human()


def show_progress() -> bool:
    return sys.stdout.isatty() and not wants_json()


class Bars:
    """Progress bars on stderr, or nothing when output is not a terminal (or is JSON).

    ``kind`` chooses the columns: ``bytes`` (transfers: size done, rate, ETA), ``items``
    (results fetched page by page: count done of the total, rate, ETA), ``busy`` (one
    long server call that reports no progress: a spinner and the time elapsed). Bars of
    ``items`` and ``busy`` vanish when done, so that the table printed after them stays
    alone on the screen.
    """

    def __init__(self, kind: str = "bytes", unit: str = "") -> None:
        self.progress: Any = None
        self.unit = unit
        if show_progress():
            self.progress = _make_progress(kind, unit)

    def __enter__(self) -> Bars:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def task(self, description: str, total: int | None) -> Callable[[int], None] | None:
        """A progress callback for one transfer (None when bars are off)."""
        if self.progress is None:
            return None
        progress = self.progress
        task_id = progress.add_task(description, total=total)
        return lambda n: progress.advance(task_id, n)

    def pages(self, description: str) -> Callable[[int, int], None] | None:
        """A callback ``(fetched, total)`` for results that arrive page by page, the
        total known from the first page (None when bars are off)."""
        if self.progress is None:
            return None
        progress = self.progress
        task_id = progress.add_task(description, total=None)

        def advance(fetched: int, total: int) -> None:
            progress.update(task_id, total=total, advance=fetched)

        return advance

    def busy(self, description: str) -> None:
        """A spinner with the time elapsed for a call that reports no progress."""
        if self.progress is not None:
            self.progress.add_task(description, total=None)


def _make_progress(kind: str, unit: str) -> Any:
    # rich loads only when bars are drawn: piped and JSON runs start faster without it.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Items per second (rich has a rate column for bytes only)."""

        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} {unit}/s" if speed else f"? {unit}/s")

    console = Console(stderr=True)
    columns: list[Any]
    if kind == "bytes":
        columns = [DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    elif kind == "items":
        columns = [MofNCompleteColumn(), TextColumn(unit), RateColumn(), TimeRemainingColumn()]
    else:
        columns = [SpinnerColumn(), TimeElapsedColumn()]
    first: list[Any] = [TextColumn("{task.description}")]
    if kind != "busy":
        first.append(BarColumn())
    return Progress(*first, *columns, console=console, transient=kind != "bytes")


@contextlib.contextmanager
def bars(kind: str = "bytes", unit: str = "") -> Iterator[Bars]:
    with Bars(kind, unit) as b:
        yield b


_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "kib": 1024, "mib": 1024**2}
_UNITS.update({"gib": 1024**3, "kb": 1000, "mb": 1000**2, "gb": 1000**3})


def parse_size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """A click callback: a size in bytes from ``1048576``, ``64MiB``, ``8M`` (decimal)…"""
    if value is None:
        return None
    text = value.strip().lower()
    digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(digits) :].strip()
    if not digits.strip().isdigit() or unit not in _UNITS or int(digits) <= 0:
        raise click.BadParameter(f"expected a size such as 1048576, 64MiB or 1GiB, not {value!r}")
    return int(digits) * _UNITS[unit]


def check_readable(path: str) -> None:
    """Raises a one-line LocalFileError unless ``path`` is a regular file we can read.

    It opens the file rather than asking ``os.access``: access() answers for the real
    user (root passes it whatever the mode), open() is what the transfer will do.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise LocalFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise LocalFileError(f"cannot read {path}: Is a directory")
    if not stat.S_ISREG(mode):  # a FIFO or device: opening could block, reading never end
        raise LocalFileError(f"cannot read {path}: not a regular file")
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        raise LocalFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def parse_pairs(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` arguments; a value that is JSON (number, true, list…) is parsed."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, not {pair!r}")
        try:
            out[key] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out[key] = raw
    return out

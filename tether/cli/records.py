"""Metadata and data sets: ``record add|search|ingest`` and ``set create|resolve|download|
snapshot``.

These speak the generic API to the ``data-record`` and ``data-set`` resource types (DESIGN
§4). A server without those types answers 404 "unknown resource type", which these
commands report as a one-line error like any other.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from tether.cli.common import (
    bars,
    check_readable,
    json_option,
    output,
    parse_pairs,
    print_doc,
    print_table,
    state,
    stream_json_array,
    wants_json,
)
from tether.cli.storage import _file_name
from tether.client.errors import LocalFileError


@click.group()
def record() -> None:
    """Metadata records (data-record) with namespaced keys such as gnss:accuracy."""


@record.command("add")
@click.argument("pairs", nargs=-1, required=True)
@click.option("--object", "object_id", help="The data-object it describes.")
@click.option("--name", help="A display name.")
@json_option
def record_add(pairs: tuple[str, ...], object_id: str | None, name: str | None) -> None:
    """Add a record from key=value pairs (JSON values are parsed: 3, true, [1,2])."""
    body = parse_pairs(pairs)
    if object_id:
        rid = object_id if object_id.startswith("data-object/") else f"data-object/{object_id}"
        body["data-object"] = rid
    if name:
        body["name"] = name
    answer = state().client().add("data-record", body)
    output(answer, lambda: click.echo(answer["resource-id"]))


@record.command("prefix")
@click.argument("prefix")
@click.argument("uri")
@json_option
def record_prefix(prefix: str, uri: str) -> None:
    """Register a key namespace (admins): keys PREFIX:name become usable."""
    answer = state().client().add("data-record-key-prefix", {"prefix": prefix, "uri": uri})
    output(answer, lambda: click.echo(answer["resource-id"]))


@record.command("search")
@click.option("--filter", "filters", multiple=True, help="Filter (repeatable, AND-joined).")
@click.option("--orderby", help="e.g. 'created:desc'.")
@click.option("--select", help="Attributes to return.")
@click.option("--limit", type=int, help="At most this many.")
@json_option
def record_search(
    filters: tuple[str, ...], orderby: str | None, select: str | None, limit: int | None
) -> None:
    """Search records with the filter language."""
    docs = (
        state()
        .client()
        .search_iter(
            "data-record", filter=list(filters), orderby=orderby, select=select, limit=limit
        )
    )
    if wants_json():
        stream_json_array(docs)
        return
    rows = list(docs)
    columns = [c.strip() for c in select.split(",")] if select else ["name", "data-object"]
    print_table(rows, ["id", *[c for c in columns if c != "id"]])


@record.command("ingest")
@click.argument("path", type=click.Path(readable=False))
@click.option("--batch", type=int, default=1000, show_default=True, help="Records per request.")
@json_option
def record_ingest(path: str, batch: int) -> None:
    """Add one record per line of an NDJSON file; report what failed, by line number.

    Records are sent in batches (one transaction each). Give records an ``id``
    (``data-record/<name>``) to make a repeated ingest add nothing twice.
    """
    check_readable(path)
    try:
        size = os.path.getsize(path)
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise LocalFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    failures: list[dict[str, Any]] = []
    numbers: list[int] = []
    added = 0

    def docs(advance: Any) -> Iterator[dict[str, Any]]:
        for number, line in enumerate(fh, 1):
            if advance is not None:
                advance(len(line))
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                failures.append({"line": number, "status": 400, "message": f"not JSON: {exc}"})
                continue
            numbers.append(number)
            yield doc

    with fh, bars() as b:
        results = state().client().add_many("data-record", docs(b.task("records", size)), batch)
        for index, result in enumerate(results):
            if result.get("status") == 201:
                added += 1
            else:
                failures.append(
                    {
                        "line": numbers[index],
                        "status": result.get("status"),
                        "message": result.get("message", ""),
                    }
                )
    failures.sort(key=lambda f: f["line"])
    report = {"added": added, "failed": len(failures), "failures": failures}

    def human() -> None:
        click.echo(f"added {added} record(s), {len(failures)} failed")
        for f in failures[:20]:
            click.echo(f"  line {f['line']}: {f['message']}", err=True)

    output(report, human)
    if failures:
        raise SystemExit(1)


@click.group("set")
def dataset() -> None:
    """Data sets: saved searches over objects, records and modules."""


@dataset.command("create")
@click.argument("name")
@click.option("--object-filter", help="Filter selecting data-objects.")
@click.option("--record-filter", help="Filter selecting data-records.")
@click.option("--module-filter", help="Filter selecting modules.")
@click.option("--description", help="A description.")
@json_option
def set_create(
    name: str,
    object_filter: str | None,
    record_filter: str | None,
    module_filter: str | None,
    description: str | None,
) -> None:
    """Create a data set."""
    body: dict[str, Any] = {"name": name}
    for key, value in (
        ("data-object-filter", object_filter),
        ("data-record-filter", record_filter),
        ("module-filter", module_filter),
        ("description", description),
    ):
        if value:
            body[key] = value
    answer = state().client().add("data-set", body)
    output(answer, lambda: click.echo(answer["resource-id"]))


def _set_id(value: str) -> str:
    return value if value.startswith("data-set/") else f"data-set/{value}"


@dataset.command("resolve")
@click.argument("set_id")
@json_option
def set_resolve(set_id: str) -> None:
    """List the data-objects a data set selects now."""
    storage = state().client().storage
    if wants_json():
        stream_json_array(storage.dataset_objects(_set_id(set_id)))
        return
    with bars("items", "objects") as b:
        rows = list(storage.dataset_objects(_set_id(set_id), progress=b.pages("resolving")))
    print_table(rows, ["id", "name", "state", "bytes", "bucket", "object"])


@dataset.command("download")
@click.argument("set_id")
@click.option("-o", "--output", "target", type=click.Path(file_okay=False), default=".")
@json_option
def set_download(set_id: str, target: str) -> None:
    """Download every READY data-object of a data set into a directory."""
    storage = state().client().storage
    os.makedirs(target, exist_ok=True)
    done: list[dict[str, Any]] = []
    with bars() as b:
        for doc in storage.dataset_objects(_set_id(set_id)):
            if doc.get("state") != "READY":
                continue
            obj = storage.get_object(str(doc["id"]))
            dest = Path(target) / _file_name(obj)
            obj.download_to_file(dest, progress=b.task(dest.name, obj.size))
            done.append({"id": obj.id, "path": str(dest), "bytes": obj.size})
    output(done, lambda: print_table(done, ["id", "path", "bytes"]))


@dataset.command("snapshot")
@click.argument("set_id")
@json_option
def set_snapshot(set_id: str) -> None:
    """Freeze the data set's current members (a snapshot with a content hash)."""
    sid = _set_id(set_id)
    client = state().client()
    with bars("busy") as b:
        # One server call that reports no progress: a spinner and the time it has taken.
        b.busy(f"snapshot of {sid}")
        answer = client.operation(sid, "snapshot", {})
    print_doc(answer)


COMMANDS = [record, dataset]

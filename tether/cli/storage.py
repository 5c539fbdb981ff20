"""Stores and objects: ``service``, ``credential``, ``put``, ``get``, ``ls``, ``info``, ``rm``,
``url``.

``put`` creates one data-object per file (on ``--service``, default: the server's default
storage service; in ``--bucket``, default: the service's default bucket), uploads it
through signed URLs and readies it. Without ``--bucket`` the stored object is named by the
resource's uuid (names never collide in the shared default bucket) and the resource's
``name`` is the file name; with ``--bucket`` the object is named after the file
(``--name`` chooses another name for a single file).

``put`` is resumable: running it again for the same unchanged file and the same target
after an interruption continues the upload into the same data-object, sending only the
parts that were not finished (see :meth:`tether.client.storage.StorageService.put_file`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import click

from tether.cli.common import (
    CliError,
    bars,
    check_readable,
    echo_lines,
    json_option,
    output,
    parse_pairs,
    parse_size,
    print_doc,
    print_table,
    state,
    stream_json_array,
    wants_json,
)
from tether.client.errors import ConnectionFailed, TransferError
from tether.client.protocol import quote
from tether.client.storage import BucketObject

OBJECT_COLUMNS = ["id", "name", "state", "bytes", "bucket", "object", "updated"]


def _object_id(value: str) -> str:
    return value if value.startswith("data-object/") else f"data-object/{value}"


# -- services and credentials -------------------------------------------------------------


@click.group()
def service() -> None:
    """Storage services (admins add them; every user sees them)."""


@service.command("add")
@click.option("--type", "subtype", type=click.Choice(["s3", "local"]), default="s3")
@click.option("--endpoint", help="S3 endpoint URL (http:// or https://).")
@click.option("--region", help="S3 region.")
@click.option("--addressing-style", type=click.Choice(["path", "virtual"]))
@click.option("--default-bucket", help="Bucket used when a data-object names none.")
@click.option("--priority", type=int, help="Lower first when choosing a default service.")
@click.option("--name", help="A display name.")
@json_option
def service_add(
    subtype: str,
    endpoint: str | None,
    region: str | None,
    addressing_style: str | None,
    default_bucket: str | None,
    priority: int | None,
    name: str | None,
) -> None:
    """Register a storage service."""
    template: dict[str, Any] = {"href": f"infrastructure-service-template/{subtype}"}
    for key, value in (
        ("endpoint", endpoint),
        ("region", region),
        ("addressing-style", addressing_style),
        ("default-bucket", default_bucket),
        ("priority", priority),
    ):
        if value is not None:
            template[key] = value
    if subtype == "s3" and not endpoint:
        raise CliError("an s3 service needs --endpoint", 2)
    body: dict[str, Any] = {"template": template}
    if name:
        body["name"] = name
    answer = state().client().add("infrastructure-service", body)
    output(answer, lambda: click.echo(answer["resource-id"]))


@service.command("ls")
@json_option
def service_ls() -> None:
    """List the storage services you can see (default service first)."""
    docs = list(
        state().client().search_iter("infrastructure-service", orderby="priority:asc,created:asc")
    )
    output(docs, lambda: print_table(docs, ["id", "name", "subtype", "endpoint", "priority"]))


@service.command("check")
@click.argument("service_id")
@click.option("--credential", help="The credential to check with (default: one you may use).")
@json_option
def service_check(service_id: str, credential: str | None) -> None:
    """Check that Tether reaches the store with a credential."""
    client = state().client()
    sid = service_id if "/" in service_id else f"infrastructure-service/{service_id}"
    cred = credential or client.storage.credential_for(sid)
    answer = client.operation(sid, "check", {"credential": cred})
    output(answer, lambda: click.echo(answer.get("message", "ok")))


@click.group()
def credential() -> None:
    """Credentials for storage services."""


@credential.command("add")
@click.option("--service", "service_id", required=True, help="The service it belongs to.")
@click.option("--access-key", help="S3 access key.")
@click.option("--secret-key", help="S3 secret key (asked for when missing).")
@click.option("--session-token", help="S3 session token (temporary credentials).")
@click.option("--name", help="A display name.")
@click.option("--share", is_flag=True, help="Let every logged-in user use it.")
@json_option
def credential_add(
    service_id: str,
    access_key: str | None,
    secret_key: str | None,
    session_token: str | None,
    name: str | None,
    share: bool,
) -> None:
    """Store a credential for a service (its secrets are sealed, never shown again)."""
    client = state().client()
    sid = service_id if "/" in service_id else f"infrastructure-service/{service_id}"
    subtype = client.get(sid, select="subtype").get("subtype", "s3")
    template: dict[str, Any] = {"href": f"credential-template/{subtype}", "parent": sid}
    if subtype == "s3":
        if not access_key:
            raise CliError("an s3 credential needs --access-key", 2)
        template["access-key"] = access_key
        template["secret-key"] = secret_key or click.prompt("Secret key", hide_input=True)
        if session_token:
            template["session-token"] = session_token
    body: dict[str, Any] = {"template": template}
    if name:
        body["name"] = name
    if share:
        me = client.whoami()["user"]
        body["acl"] = {"owners": [me], "view-data": ["group/tether-user"]}
    answer = client.add("credential", body)
    output(answer, lambda: click.echo(answer["resource-id"]))


@credential.command("ls")
@json_option
def credential_ls() -> None:
    """List the credentials you can see."""
    docs = list(state().client().search_iter("credential", orderby="created:asc"))
    output(docs, lambda: print_table(docs, ["id", "name", "subtype", "parent"]))


# -- objects -------------------------------------------------------------------------------


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(readable=False))
@click.option("--service", "service_id", help="Storage service (default: the server's).")
@click.option("--bucket", help="Bucket (default: the service's default bucket).")
@click.option("--name", help="Object name (one file only; default: the file name).")
@click.option("--content-type", help="Content type (default: guessed from the name).")
@click.option("--record", "records", multiple=True, help="key=value metadata (a data-record).")
@click.option(
    "--part-size",
    callback=parse_size,
    metavar="SIZE",
    help="Send files larger than this in parts of this size, e.g. 64MiB "
    "(default: parts of 16 MiB or more above 32 MiB).",
)
@click.option("--parallel", type=click.IntRange(1, 64), help="Parts sent at once (default 8).")
@json_option
def put(
    files: tuple[str, ...],
    service_id: str | None,
    bucket: str | None,
    name: str | None,
    content_type: str | None,
    records: tuple[str, ...],
    part_size: int | None,
    parallel: int | None,
) -> None:
    """Upload files as data-objects (parallel parts for big files; resumable: after an
    interruption, run the same command again and only the missing parts are sent)."""
    if name and len(files) > 1:
        raise CliError("--name works with one file only", 2)
    for path in files:
        check_readable(path)  # every file before the first upload: no half-done batch
    metadata = parse_pairs(records)
    client = state().client()
    storage = client.storage
    if part_size is not None:
        storage.options = dataclasses.replace(
            storage.options, part_size=part_size, threshold=part_size
        )
    if parallel is not None:
        storage.options = dataclasses.replace(storage.options, concurrency=parallel)
    sid = service_id or storage.default_service()
    sid = sid if "/" in sid else f"infrastructure-service/{sid}"
    done: list[dict[str, Any]] = []
    with bars() as b:
        for path in files:
            file_name = Path(path).name
            task = b.task(name or file_name, os.path.getsize(path))
            try:
                obj = storage.put_file(
                    path, sid, bucket, name, content_type, progress=task, record=metadata or None
                )
            except (TransferError, ConnectionFailed) as exc:
                code = 3 if isinstance(exc, ConnectionFailed) else 7
                hint = "; run the same command again to resume"
                raise CliError(exc.message + hint, code) from None
            stats = obj.last_upload
            if stats is None:  # a run cut after `ready`: nothing left to send
                click.echo(f"{path} was uploaded already, as {obj.id}", err=True)
            elif stats.resumed_bytes:
                # On stderr: scripts reading --json on stdout are not disturbed.
                click.echo(
                    f"resumed {path}: {stats.resumed_bytes} of {stats.size} bytes were "
                    f"already sent ({stats.parts - stats.parts_sent} of {stats.parts} parts)",
                    err=True,
                )
            done.append(obj.resource)
    output(done, lambda: print_table(done, ["id", "name", "bytes", "sha256"]))


@click.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("-o", "--output", "target", type=click.Path(), help="File (one id) or directory.")
@json_option
def get(ids: tuple[str, ...], target: str | None) -> None:
    """Download data-objects (verified; resumed when a previous try was cut)."""
    storage = state().client().storage
    objects = [storage.get_object(_object_id(i)) for i in ids]
    for obj in objects:  # all checked first: no download starts when one cannot be made
        if obj.state != "READY":
            raise CliError(f"cannot download {obj.id}: it is {obj.state}, not READY", 6)
    if target and len(objects) > 1 and not os.path.isdir(target):
        raise CliError(f"{target} must be a directory to download {len(objects)} objects", 2)
    done: list[dict[str, Any]] = []
    with bars() as b:
        for obj in objects:
            dest = Path(target) if target else Path.cwd()
            if dest.is_dir():
                dest = dest / _file_name(obj)
            obj.download_to_file(dest, progress=b.task(dest.name, obj.size))
            done.append({"id": obj.id, "path": str(dest), "bytes": obj.size})
    output(done, lambda: print_table(done, ["id", "path", "bytes"]))


def _file_name(obj: BucketObject) -> str:
    name = str(obj.resource.get("name") or Path(obj.name).name or obj.id.split("/")[-1])
    return Path(name).name or obj.id.split("/")[-1]


@click.command("ls")
@click.option("--filter", "filters", multiple=True, help="Filter (repeatable, AND-joined).")
@click.option("--orderby", help="e.g. 'created:desc,name'.")
@click.option("--select", help="Attributes to return, e.g. 'name,bytes'.")
@click.option("--bucket", help="Only objects of this bucket.")
@click.option("--limit", type=int, help="At most this many.")
@click.option("--type", "resource_type", default="data-object", help="Resource type to list.")
@json_option
def ls(
    filters: tuple[str, ...],
    orderby: str | None,
    select: str | None,
    bucket: str | None,
    limit: int | None,
    resource_type: str,
) -> None:
    """List data-objects (or any resource type), page by page, as many as there are."""
    all_filters = list(filters) + ([f"bucket={quote(bucket)}"] if bucket else [])
    client = state().client()
    if wants_json():
        # Streamed as the pages arrive (constant memory); JSON never gets bars.
        stream_json_array(
            client.search_iter(
                resource_type, filter=all_filters, orderby=orderby, select=select, limit=limit
            )
        )
        return
    with bars("items", "results") as b:
        rows = list(
            client.search_iter(
                resource_type,
                filter=all_filters,
                orderby=orderby,
                select=select,
                limit=limit,
                progress=b.pages(f"listing {resource_type}"),
            )
        )
    columns = [c.strip() for c in select.split(",")] if select else OBJECT_COLUMNS
    if resource_type != "data-object" and not select:
        columns = ["id", "name", "updated"]
    print_table(rows, ["id", *[c for c in columns if c != "id"]])


@click.command()
@click.argument("resource_id")
@json_option
def info(resource_id: str) -> None:
    """Show a data-object (or any resource): state, size, checksums, metadata."""
    rid = resource_id if "/" in resource_id else _object_id(resource_id)
    print_doc(state().client().get(rid))


@click.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("--keep-object", is_flag=True, help="Keep the stored bytes in the store.")
@json_option
def rm(ids: tuple[str, ...], keep_object: bool) -> None:
    """Delete data-objects and their stored bytes."""
    client = state().client()
    params = {"keep-s3-object": True} if keep_object else {}
    answers = [client.delete(_object_id(i), **params) for i in ids]
    output(answers, lambda: echo_lines(str(a.get("message", "")) for a in answers))


@click.command()
@click.argument("resource_id")
@click.option("--ttl", type=int, default=3600, show_default=True, help="Lifetime, seconds.")
@click.option("--writable", is_flag=True, help="A PUT URL (objects not yet READY).")
@click.option("--filename", help="Download file name the URL asks browsers to use.")
@json_option
def url(resource_id: str, ttl: int, writable: bool, filename: str | None) -> None:
    """Print a signed URL to download (or upload) an object."""
    client = state().client()
    rid = _object_id(resource_id)
    if writable:
        answer = client.operation(rid, "upload", {"expires-in": ttl, "conditional": False})
    else:
        body: dict[str, Any] = {"expires-in": ttl}
        if filename:
            body["filename"] = filename
        answer = client.operation(rid, "download", body)
    output(answer, lambda: click.echo(answer["uri"]))


COMMANDS = [service, credential, put, get, ls, info, rm, url]

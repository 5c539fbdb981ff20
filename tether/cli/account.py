"""Login and accounts: ``login``, ``logout``, ``whoami``, ``user``, ``group``, ``api-key``."""

from __future__ import annotations

import click

from tether.cli.common import (
    CliError,
    echo_lines,
    json_option,
    output,
    print_doc,
    print_json,
    print_table,
    state,
    stream_json_array,
    wants_json,
)
from tether.client import Client
from tether.client.config import normalize_url


@click.command()
@click.argument("url", required=False)
@click.option("-u", "--username", help="Log in with this username (asks for the password).")
@click.option("--password", help="The password (asked for when missing; avoid on shared hosts).")
@click.option("--api-key", help="Log in with an API key (credential/…) instead.")
@click.option("--api-secret", help="The API key's secret (asked for when missing).")
@json_option
def login(
    url: str | None,
    username: str | None,
    password: str | None,
    api_key: str | None,
    api_secret: str | None,
) -> None:
    """Log in to a Tether server and save the session (readable by you only)."""
    st = state()
    config = st.client_config()
    saved = config.load_session()
    target = url or st.url or config.url or (saved.url if saved else None)
    if not target:
        raise CliError("give the server URL: tether login URL -u USERNAME", 2)
    target = normalize_url(target)
    if api_key:
        secret = api_secret or click.prompt("API secret", hide_input=True)
        client = Client(target, key=api_key, secret=secret, config=config, use_saved_session=False)
    else:
        user = username or click.prompt("Username")
        secret = password if password is not None else click.prompt("Password", hide_input=True)
        client = Client(
            target, username=user, password=secret, config=config, use_saved_session=False
        )
    with client:
        session = client.saved_session()
        path = config.save_session(session)
    output(
        {
            "url": session.url,
            "user": session.user,
            "username": session.username,
            "session": session.session_id,
            "saved-to": str(path),
        },
        lambda: click.echo(f"Logged in to {session.url} as {session.username} ({session.user})"),
    )


@click.command()
@json_option
def logout() -> None:
    """End the saved session on the server and forget it."""
    st = state()
    config = st.client_config()
    saved = config.load_session()
    if saved is None:
        output({"logged-out": False}, lambda: click.echo("Not logged in."))
        return
    try:
        st.client().logout()
    finally:
        config.forget_session()
    output({"logged-out": True, "url": saved.url}, lambda: click.echo(f"Logged out of {saved.url}"))


@click.command()
@json_option
def whoami() -> None:
    """Show who the saved session (or API key) is logged in as."""
    who = state().client().whoami()
    if wants_json():
        print_json(who)
    elif who["user"] is None:
        raise CliError(f"not logged in to {who['url']}: run tether login", 4)
    else:
        click.echo(f"{who['username']} ({who['user']}) on {who['url']}")
        click.echo(f"roles: {', '.join(who['roles'])}")


# -- users and groups (admins) ------------------------------------------------------------


@click.group()
def user() -> None:
    """Manage user accounts (admins)."""


@user.command("add")
@click.argument("username")
@click.option("--password", help="The new user's password (asked for when missing).")
@click.option("--email", help="An email address.")
@click.option("--name", help="A display name.")
@json_option
def user_add(username: str, password: str | None, email: str | None, name: str | None) -> None:
    """Create a user who logs in with a username and password."""
    secret = password or click.prompt("Password", hide_input=True, confirmation_prompt=True)
    template = {"href": "user-template/username-password", "username": username, "password": secret}
    if email:
        template["email"] = email
    body: dict[str, object] = {"template": template}
    if name:
        body["name"] = name
    answer = state().client().add("user", body)
    output(answer, lambda: click.echo(answer["resource-id"]))


@user.command("ls")
@click.option("--filter", "filter_", help="A filter, e.g. \"username^='a'\".")
@json_option
def user_ls(filter_: str | None) -> None:
    """List users."""
    docs = state().client().search_iter("user", filter=filter_, orderby="username:asc")
    if wants_json():
        stream_json_array(docs)
    else:
        print_table(list(docs), ["id", "username", "state", "email"])


@user.command("rm")
@click.argument("ids", nargs=-1, required=True)
@json_option
def user_rm(ids: tuple[str, ...]) -> None:
    """Delete users (and their sessions)."""
    client = state().client()
    answers = [client.delete(_typed("user", i)) for i in ids]
    output(answers, lambda: echo_lines(f"deleted {a['resource-id']}" for a in answers))


@user.command("passwd")
@click.argument("user_id")
@click.option("--password", help="The new password (asked for when missing).")
@json_option
def user_passwd(user_id: str, password: str | None) -> None:
    """Set a user's password (admins set any; users give their current one when asked)."""
    secret = password or click.prompt("New password", hide_input=True, confirmation_prompt=True)
    answer = (
        state().client().operation(_typed("user", user_id), "set-password", {"password": secret})
    )
    output(answer, lambda: click.echo(answer.get("message", "done")))


@click.group()
def group() -> None:
    """Manage groups (admins)."""


@group.command("add")
@click.argument("identifier")
@click.option("--member", "members", multiple=True, help="A member user id (repeatable).")
@click.option("--name", help="A display name.")
@json_option
def group_add(identifier: str, members: tuple[str, ...], name: str | None) -> None:
    """Create group/IDENTIFIER with the given members."""
    body: dict[str, object] = {
        "group-identifier": identifier,
        "users": [_typed("user", m) for m in members],
    }
    if name:
        body["name"] = name
    answer = state().client().add("group", body)
    output(answer, lambda: click.echo(answer["resource-id"]))


@group.command("ls")
@json_option
def group_ls() -> None:
    """List groups."""
    docs = list(state().client().search_iter("group", orderby="id:asc"))
    output(
        docs,
        lambda: print_table(
            [{**d, "members": len(d.get("users", []))} for d in docs], ["id", "name", "members"]
        ),
    )


@group.command("members")
@click.argument("group_id")
@click.option("--add", "add", multiple=True, help="A user id to add (repeatable).")
@click.option("--remove", "remove", multiple=True, help="A user id to remove (repeatable).")
@json_option
def group_members(group_id: str, add: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Show, add or remove members (members log in again to get the group)."""
    client = state().client()
    gid = _typed("group", group_id)
    doc = client.get(gid)
    users = list(doc.get("users", []))
    if add or remove:
        drop = {_typed("user", r) for r in remove}
        users = [u for u in users if u not in drop]
        users += [u for u in (_typed("user", a) for a in add) if u not in users]
        doc = client.edit(gid, {"users": users})
    output(doc.get("users", []), lambda: echo_lines(doc.get("users", [])))


@group.command("rm")
@click.argument("ids", nargs=-1, required=True)
@json_option
def group_rm(ids: tuple[str, ...]) -> None:
    """Delete groups."""
    client = state().client()
    answers = [client.delete(_typed("group", i)) for i in ids]
    output(answers, lambda: echo_lines(f"deleted {a['resource-id']}" for a in answers))


@click.group("api-key")
def api_key() -> None:
    """Create API keys for logging in without a password."""


@api_key.command("create")
@click.option("--name", help="A name to recognise the key by.")
@click.option("--ttl", type=int, help="Lifetime in seconds (default: no expiry).")
@json_option
def api_key_create(name: str | None, ttl: int | None) -> None:
    """Create an API key; its secret is shown this once only."""
    template: dict[str, object] = {"href": "credential-template/api-key"}
    if ttl:
        template["ttl"] = ttl
    body: dict[str, object] = {"template": template}
    if name:
        body["name"] = name
    answer = state().client().add("credential", body)
    data = {"key": answer["key"], "secret": answer["secret-key"]}

    def human() -> None:
        click.echo(f"key:    {data['key']}")
        click.echo(f"secret: {data['secret']}")
        click.echo("The secret is shown only now. Log in with: tether login --api-key KEY")

    output(data, human)


@click.command()
@click.argument("resource_id")
@json_option
def show(resource_id: str) -> None:
    """Show any resource by id (e.g. user/…, group/…, credential/…)."""
    print_doc(state().client().get(resource_id))


def _typed(resource_type: str, value: str) -> str:
    """``value`` as a ``type/…`` id: a bare uuid or name gets the type prepended."""
    return value if value.startswith(f"{resource_type}/") else f"{resource_type}/{value}"


COMMANDS = [login, logout, whoami, user, group, api_key, show]

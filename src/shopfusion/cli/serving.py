"""`serve`, and what runs beside it: API `keys` and model versions (`models list`, `models rollback`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shopfusion.build.artifacts import read_manifest
from shopfusion.cli.common import WorkspaceOpt, console, fail, open_workspace
from shopfusion.cli.demo import DEMO_DATA, build_demo, show_demo
from shopfusion.workspace import Workspace, WorkspaceError

keys_app = typer.Typer(help="API keys for the HTTP API (stored hashed in the workspace).", no_args_is_help=True)
models_app = typer.Typer(help="Model versions (one per build): list and roll back.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who uses the key, e.g. storefront.")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="read | write | admin; repeatable (default: read).")
    ] = None,
    rate: Annotated[int | None, typer.Option("--rate", min=1, help="Requests per minute for this key.")] = None,
    workspace: WorkspaceOpt = Path("workspace"),
) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    from shopfusion.serve.auth import KEYS_FILE, KeyStore, Scope

    try:
        scopes = [Scope(s) for s in (scope or ["read"])]
    except ValueError as exc:
        raise fail(f"unknown scope: {exc}") from exc
    plaintext = KeyStore(open_workspace(workspace).root / KEYS_FILE).create(name, scopes, rate)
    console.print(plaintext)


@keys_app.command("list")
def keys_list(workspace: WorkspaceOpt = Path("workspace")) -> None:
    """Key ids, names, scopes and rates (never the secrets)."""
    from shopfusion.serve.auth import KEYS_FILE, KeyStore

    for key in KeyStore(open_workspace(workspace).root / KEYS_FILE).list():
        scopes = ",".join(s.value for s in key.scopes)
        console.print(f"{key.key_id}  {key.name}  scopes={scopes}  rate={key.rate_per_minute or 'default'}")


@keys_app.command("revoke")
def keys_revoke(key_id: str, workspace: WorkspaceOpt = Path("workspace")) -> None:
    """Revoke a key by its id."""
    from shopfusion.serve.auth import KEYS_FILE, KeyStore

    if not KeyStore(open_workspace(workspace).root / KEYS_FILE).revoke(key_id):
        raise fail(f"no key with id {key_id!r}")
    console.print(f"revoked {key_id}")


def serve(
    workspace: WorkspaceOpt = Path("workspace"),
    host: Annotated[str | None, typer.Option("--host", help="Default: serve.host in the settings.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Default: serve.port in the settings.")] = None,
    demo_data: Annotated[
        bool,
        typer.Option(
            "--demo", help="Build the demo workspace if needed (reused after), show examples; anonymous read access."
        ),
    ] = False,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs), the storefront (/) and the admin dashboard (/admin)."""
    import uvicorn

    from shopfusion.serve.app import create_app, limit_native_threads

    if demo_data:
        if Workspace(Path(workspace).resolve()).current_version is None:
            build_demo(workspace, DEMO_DATA)
        show_demo(workspace)
    ws = open_workspace(workspace)
    try:
        api = create_app(ws.root, anonymous_read=demo_data)
    except WorkspaceError as exc:
        raise fail(str(exc)) from exc
    limit_native_threads()
    settings = ws.settings.serve
    host, port = host or settings.host, port or settings.port
    url = f"http://{host}:{port}"
    console.print(f"ShopFusion on {url}  (storefront {url}/, API docs {url}/docs, admin {url}/admin; Ctrl+C stops)")
    uvicorn.run(api, host=host, port=port, log_level="warning", access_log=False)


@models_app.command("list")
def models_list(workspace: WorkspaceOpt = Path("workspace")) -> None:
    """Builds kept in the workspace; the served one is marked."""
    ws = open_workspace(workspace)
    for version in ws.model_versions():
        manifest = read_manifest(ws.models_dir / version)
        mark = "*" if version == ws.current_version else " "
        console.print(f"{mark} {version}  items={manifest['items']}  events={manifest['events']}")


@models_app.command("rollback")
def models_rollback(version: str, workspace: WorkspaceOpt = Path("workspace")) -> None:
    """Serve an earlier build again (a running server picks it up on POST /admin/reload)."""
    ws = open_workspace(workspace)
    try:
        ws.activate(version)
    except WorkspaceError as exc:
        raise fail(str(exc)) from exc
    console.print(f"now serving {version}")

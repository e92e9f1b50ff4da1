"""The `shopfusion` command line."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shopfusion.catalog.ingest import KINDS, ColumnMapping, IngestError, ingest_file
from shopfusion.catalog.privacy import user_key_function
from shopfusion.catalog.store import open_store
from shopfusion.encoders.sentence import EncoderUnavailable
from shopfusion.pipeline import BuildError, build, read_manifest
from shopfusion.workspace import Workspace, WorkspaceError

app = typer.Typer(
    help="ShopFusion: product search and recommendations from your catalogue and behaviour events.",
    no_args_is_help=True,
    add_completion=False,
)
eval_app = typer.Typer(help="Offline evaluation: every method side by side on a benchmark.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
keys_app = typer.Typer(help="API keys for the HTTP API (stored hashed in the workspace).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
models_app = typer.Typer(help="Model versions (one per build): list and roll back.", no_args_is_help=True)
app.add_typer(models_app, name="models")
train_app = typer.Typer(help="Retrain one part of a built workspace as a new model version.", no_args_is_help=True)
app.add_typer(train_app, name="train")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

WorkspaceOpt = Annotated[
    Path,
    typer.Option("--workspace", "-w", envvar="SHOPFUSION_WORKSPACE", help="Workspace folder (config, store, indexes)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
MappingOpt = Annotated[
    Path | None, typer.Option("--mapping", "-m", help="TOML mapping file: [columns], [constants], attributes.")
]
MapOpt = Annotated[
    list[str] | None, typer.Option("--map", help="FIELD=SOURCE_COLUMN, repeatable (wins over --mapping).")
]
ConstOpt = Annotated[list[str] | None, typer.Option("--const", help="FIELD=VALUE for every row, e.g. type=purchase.")]


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


def _open(workspace: Path) -> Workspace:
    try:
        return Workspace.open(workspace)
    except WorkspaceError as exc:
        raise _fail(str(exc)) from exc


def _column_mapping(mapping: Path | None, column: list[str] | None, constant: list[str] | None) -> ColumnMapping:
    """The mapping file's columns and constants, overridden by --map / --const flags."""
    base = ColumnMapping.from_toml(mapping) if mapping else ColumnMapping()
    return base.merged(
        ColumnMapping(columns=_pairs(column or [], "--map"), constants=_pairs(constant or [], "--const"))
    )


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip():
            raise _fail(f"{flag} expects FIELD=VALUE, got {value!r}")
        pairs[name.strip()] = rest.strip()
    return pairs


@app.command()
def init(workspace: WorkspaceOpt = Path("workspace")) -> None:
    """Create a workspace folder with a default shopfusion.toml."""
    ws = Workspace.init(workspace)
    console.print(f"workspace ready: {ws.root} (config: {ws.config_path.name})")


@app.command()
def ingest(
    kind: Annotated[str, typer.Argument(help=f"What the file holds: {' | '.join(KINDS)}.")],
    path: Annotated[Path, typer.Argument(help="CSV, TSV, JSONL or Parquet file, optionally .gz.")],
    workspace: WorkspaceOpt = Path("workspace"),
    mapping: MappingOpt = None,
    column: MapOpt = None,
    constant: ConstOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load items, users or events; invalid rows go to a rejects file with row, field and reason."""
    ws = Workspace.init(workspace)
    try:
        columns = _column_mapping(mapping, column, constant)
        store = open_store(ws.store_url())
        try:
            summary = ingest_file(store, kind, path, columns, ws.rejects_dir, user_key_function(ws))
        finally:
            store.close()
    except IngestError as exc:
        raise _fail(f"nothing loaded: {exc}") from exc
    report = summary.as_dict()
    if as_json:
        console.print_json(json.dumps(report))
        return
    console.print(
        f"{kind}: {report['rows']} rows read, [green]{report['loaded']} loaded[/], {report['updated']} updated, "
        f"{report['unchanged']} unchanged, [red]{report['rejected']} rejected[/]"
    )
    for reason, count in report["reject_reasons"].items():
        console.print(f"  rejected {count:>7}  {reason}")
    if report["rejects_file"]:
        console.print(f"  rejects with row numbers: {report['rejects_file']}")
    if report["ignored_columns"]:
        console.print(f"  ignored columns: {', '.join(report['ignored_columns'])}")


@app.command("build")
def build_command(workspace: WorkspaceOpt = Path("workspace"), as_json: JsonOpt = False) -> None:
    """Encode items (cached), build the lexical and vector indexes and fit the recommenders."""
    ws = _open(workspace)
    try:
        report = build(ws, show_progress=not as_json)
    except (BuildError, EncoderUnavailable) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        console.print_json(json.dumps(asdict(report)))
        return
    console.print(
        f"built {report.items} items ({report.encoded} encoded, {report.from_cache} from cache), "
        f"{report.events} events, {report.users_with_history} users, {report.vector_index} in {report.seconds}s"
    )


@train_app.command("recommend")
def train_recommend_command(workspace: WorkspaceOpt = Path("workspace"), as_json: JsonOpt = False) -> None:
    """Refit the recommenders (sources, sequential model, learned ranker) on the store's events."""
    from shopfusion.pipeline import train_recommend

    ws = _open(workspace)
    try:
        manifest = train_recommend(ws)
    except BuildError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        console.print_json(json.dumps(manifest))
        return
    summary: Any = manifest["recommend"]
    ranker = summary["ranker"]
    learned = f", ranker AUC {ranker['auc']} logloss {ranker['logloss']}" if ranker else ""
    console.print(
        f"recommenders trained on {manifest['events']} events ({summary['method']} ranking{learned}) "
        f"as {manifest['version']} in {manifest['seconds']}s"
    )


@train_app.command("search")
def train_search_command(
    queries: Annotated[
        Path | None, typer.Option("--queries", help="queries.tsv: query_id<TAB>query (with --qrels)")
    ] = None,
    qrels: Annotated[
        Path | None, typer.Option("--qrels", help="qrels.tsv: query_id<TAB>item_id<TAB>grade (with --queries)")
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events",
            help="Events file as `ingest events` reads it: searches followed by clicks, add-to-carts and "
            "purchases become judgements (default without --queries/--qrels: the store's events); its columns "
            "are mapped with --mapping / --map / --const as for `ingest events`.",
        ),
    ] = None,
    mapping: MappingOpt = None,
    column: MapOpt = None,
    constant: ConstOpt = None,
    workspace: WorkspaceOpt = Path("workspace"),
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune the bi-encoder and the cross-encoder and train the rankers from graded judgements and from what
    shoppers clicked, put in the cart or bought after a search; the served search uses them from the next engine
    load (`serve` picks them up on POST /admin/reload)."""
    from shopfusion.evaluate.search_eval import EvalInputError
    from shopfusion.pipeline import train_search, trained_search_dir
    from shopfusion.search.learned import MIN_TRAIN_QUERIES

    if (queries is None) != (qrels is None):
        raise _fail("--queries and --qrels go together")
    ws = _open(workspace)
    log = console.print if not as_json else lambda _: None
    try:
        columns = _column_mapping(mapping, column, constant)
        report = train_search(ws, queries, qrels, log=log, events=events, events_mapping=columns)
    except (BuildError, EncoderUnavailable, EvalInputError, IngestError, OSError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        console.print_json(json.dumps(report))
        return
    judged: Any = report["judgements"]
    if report["learned_validation_ndcg"] is None:
        raise _fail(
            f"{judged['queries']} judged queries ({judged['pairs']} query-item pairs, {judged['from_events']} from "
            f"events): too few to train and validate learned search (at least {MIN_TRAIN_QUERIES} queries), so "
            "search stays untrained. Give more with --queries/--qrels, or with events in which searches are "
            "followed by clicks, add-to-carts or purchases (--events FILE, or `shopfusion ingest events`)"
        )
    console.print(
        f"trained on {judged['queries']} judged queries ({judged['pairs']} query-item pairs, "
        f"{judged['from_events']} from events) and {judged['co_interaction_pairs']} co-interaction item pairs"
    )
    scores = (
        f"nDCG@10 learned {report['learned_validation_ndcg']:.4f} vs untrained {report['blend_validation_ndcg']:.4f}"
    )
    verdict = "served from the next engine load" if report["used"] else "not better, so search stays untrained"
    console.print(f"learned search in {trained_search_dir(ws)} ({scores} on held-out train queries): {verdict}")


@app.command()
def stats(workspace: WorkspaceOpt = Path("workspace"), as_json: JsonOpt = False) -> None:
    """Counts in the store and what the last build produced."""
    ws = _open(workspace)
    store = open_store(ws.store_url())
    try:
        info: dict[str, Any] = {"workspace": str(ws.root), "store": store.counts()}
    finally:
        store.close()
    if (ws.artifacts_dir / "manifest.json").exists():
        info["build"] = read_manifest(ws.artifacts_dir)
    if as_json:
        console.print_json(json.dumps(info, default=str))
        return
    table = Table(title=f"ShopFusion workspace {ws.root}")
    table.add_column("what")
    table.add_column("value", justify="right")
    for kind, count in info["store"].items():
        table.add_row(kind, str(count))
    for key, value in info.get("build", {}).items():
        table.add_row(f"build.{key}", str(value))
    console.print(table)


def _print_results(title: str, results: list[Any], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps({"results": [asdict(r) for r in results]}, default=str))
        return
    table = Table(title=title)
    for name, justify in (
        ("#", "right"),
        ("item", "left"),
        ("title", "left"),
        ("price", "right"),
        ("why", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for rank, r in enumerate(results, 1):
        price = "" if r.price is None else f"{r.price:.2f}"
        table.add_row(str(rank), r.item_id, r.title, price, r.reason)
    console.print(table)


def _engine(workspace: Path) -> Any:
    from shopfusion.engine import Engine

    try:
        return Engine(_open(workspace))
    except WorkspaceError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What the shopper typed.")],
    workspace: WorkspaceOpt = Path("workspace"),
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="Results per page.")] = 10,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            "-f",
            help="FIELD=VALUE, repeatable: category=Shoes>Running (path prefix), brand=a,b, price=10..50, "
            "in_stock=true, or any attribute.",
        ),
    ] = None,
    sort: Annotated[
        str, typer.Option("--sort", help="relevance | price_asc | price_desc | newest | popularity.")
    ] = "relevance",
    page: Annotated[int, typer.Option("--page", min=1, help="Page number (k results per page).")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid (BM25 + semantic) product search with filters, facets, sorting and pagination."""
    from shopfusion.search.service import SearchError

    filters = _pairs(filter_ or [], "--filter")
    try:
        response = _engine(workspace).search(query, k, filters=filters, sort=sort, page=page)
    except SearchError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        console.print_json(json.dumps(response.as_dict(), default=str))
        return
    _print_results(f"search: {query} (page {page}, {response.total} matches)", response, as_json)
    for name, counts in response.facets.items():
        if not counts:
            continue
        top = ", ".join(f"{value} ({count})" for value, count in list(counts.items())[:8])
        console.print(f"  {name}: {top}")


@app.command()
def recommend(
    workspace: WorkspaceOpt = Path("workspace"),
    user: Annotated[str | None, typer.Option("--user", help="Recommendations for this user.")] = None,
    item: Annotated[str | None, typer.Option("--item", help="Items similar to this item.")] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Comma-separated item ids of an anonymous session.")
    ] = None,
    complements: Annotated[
        bool, typer.Option("--complements", help="With --item: frequently bought together instead of similar.")
    ] = False,
    category: Annotated[
        str | None, typer.Option("--category", help="With --user/--session: only items in this category path.")
    ] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="Number of results.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Recommendations for a user, a session, or similar items / complements for an item, each with its reason.

    An unknown user or an empty session gets trending/popular items; an unknown --item is an error."""
    if sum(x is not None for x in (user, item, session)) != 1:
        raise _fail("give exactly one of --user, --item, --session")
    if complements and item is None:
        raise _fail("--complements goes with --item")
    engine = _engine(workspace)
    try:
        if user is not None:
            key = user_key_function(engine.ws)(user)
            results, title = engine.recommend_user(key, k, category=category), f"for user {user}"
        elif item is not None and complements:
            results, title = engine.complements(item, k), f"bought together with item {item}"
        elif item is not None:
            results, title = engine.similar_items(item, k), f"similar to item {item}"
        else:
            ids = [s.strip() for s in (session or "").split(",") if s.strip()]
            results, title = engine.recommend_session(ids, k, category=category), f"for session {','.join(ids)}"
    except (KeyError, WorkspaceError) as exc:
        raise _fail(str(exc)) from exc
    _print_results(title, results, as_json)


@eval_app.command("search")
def eval_search(
    products: Annotated[Path, typer.Option("--products", help="products.csv: item_id,title[,...]")],
    queries: Annotated[Path, typer.Option("--queries", help="queries.tsv: query_id<TAB>query")],
    qrels: Annotated[Path, typer.Option("--qrels", help="qrels.tsv: query_id<TAB>item_id<TAB>grade")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the JSON report.")],
    train_queries: Annotated[
        Path | None, typer.Option("--train-queries", help="Queries the default pipeline may learn from.")
    ] = None,
    train_qrels: Annotated[
        Path | None, typer.Option("--train-qrels", help="Judgements the default pipeline may learn from.")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Cut-off for nDCG and MRR.")] = 10,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", help="Folder for caches and models (default: a temp dir)."),
    ] = None,
) -> None:
    """Rank the whole catalogue for each query with every method; nDCG@k, Recall@100, MRR@k."""
    from shopfusion.evaluate.search_eval import run_search_eval

    if (train_queries is None) != (train_qrels is None):
        raise _fail("--train-queries and --train-qrels go together")
    run_search_eval(
        products=products,
        queries=queries,
        qrels=qrels,
        json_out=json_out,
        train_queries=train_queries,
        train_qrels=train_qrels,
        k=k,
        workspace=workspace,
        console=console,
    )


@eval_app.command("recommend")
def eval_recommend(
    items: Annotated[Path, typer.Option("--items", help="items.csv: item_id,title[,price,...]")],
    train: Annotated[Path, typer.Option("--train", help="Interactions to learn from: user_id,item_id,timestamp,...")],
    test: Annotated[Path, typer.Option("--test", help="Held-out interactions to predict, same columns.")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the JSON report.")],
    k: Annotated[int, typer.Option("--k", min=1, help="Cut-off for Recall and nDCG.")] = 10,
    exclude_seen: Annotated[
        bool, typer.Option("--exclude-seen", help="Never recommend items the user already had in TRAIN.")
    ] = False,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", help="Folder for caches and models (default: a temp dir)."),
    ] = None,
) -> None:
    """Rank the whole catalogue for each test user with every source and the fused default."""
    from shopfusion.evaluate.recommend_eval import run_recommend_eval

    run_recommend_eval(
        items=items,
        train=train,
        test=test,
        json_out=json_out,
        k=k,
        exclude_seen=exclude_seen,
        workspace=workspace,
        console=console,
    )


DEMO_DATA = Path(__file__).resolve().parents[2] / "demo" / "online-retail"
DEMO_QUERIES = ("christmas decorations", "red tea cup", "lunch bag for kids", "candle holder heart")


def _build_demo(workspace: Path, data: Path) -> None:
    if not (data / "items.csv").exists():
        raise _fail(f"demo data not found in {data}")
    console.rule("1. ingest the catalogue and the raw transactions")
    ingest(kind="items", path=data / "items.csv", workspace=workspace, constant=["currency=GBP"])
    ingest(kind="events", path=data / "transactions.csv.gz", workspace=workspace, mapping=data / "events.mapping.toml")
    console.rule("2. encode, index, fit")
    build_command(workspace=workspace)


def _show_demo(workspace: Path) -> None:
    console.rule("3. search")
    for query in DEMO_QUERIES:
        search(query=query, workspace=workspace, k=5)
    console.rule("4. recommendations")
    engine = _engine(workspace)
    known_user = str(engine.recommend_service.interactions.user_ids[0])
    recommend(workspace=workspace, user=known_user, k=5)
    recommend(workspace=workspace, user="a-new-visitor", k=5)
    recommend(workspace=workspace, item=engine.search(DEMO_QUERIES[1], 1)[0].item_id, k=5)
    session = ",".join(r.item_id for r in engine.search(DEMO_QUERIES[3], 2))
    recommend(workspace=workspace, session=session, k=5)


@app.command()
def demo(
    workspace: WorkspaceOpt = Path("workspace"),
    data: Annotated[Path, typer.Option("--data", help="Folder with the demo slice.")] = DEMO_DATA,
) -> None:
    """Build a workspace from the shipped Online Retail slice and show search and recommendations."""
    _build_demo(workspace, data)
    _show_demo(workspace)
    console.print(f'\nworkspace: {Path(workspace).resolve()} — try `shopfusion search "..." -w {workspace}`')


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
        raise _fail(f"unknown scope: {exc}") from exc
    plaintext = KeyStore(_open(workspace).root / KEYS_FILE).create(name, scopes, rate)
    console.print(plaintext)


@keys_app.command("list")
def keys_list(workspace: WorkspaceOpt = Path("workspace")) -> None:
    """Key ids, names, scopes and rates (never the secrets)."""
    from shopfusion.serve.auth import KEYS_FILE, KeyStore

    for key in KeyStore(_open(workspace).root / KEYS_FILE).list():
        scopes = ",".join(s.value for s in key.scopes)
        console.print(f"{key.key_id}  {key.name}  scopes={scopes}  rate={key.rate_per_minute or 'default'}")


@keys_app.command("revoke")
def keys_revoke(key_id: str, workspace: WorkspaceOpt = Path("workspace")) -> None:
    """Revoke a key by its id."""
    from shopfusion.serve.auth import KEYS_FILE, KeyStore

    if not KeyStore(_open(workspace).root / KEYS_FILE).revoke(key_id):
        raise _fail(f"no key with id {key_id!r}")
    console.print(f"revoked {key_id}")


@app.command()
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
            _build_demo(workspace, DEMO_DATA)
        _show_demo(workspace)
    ws = _open(workspace)
    try:
        api = create_app(ws.root, anonymous_read=demo_data)
    except WorkspaceError as exc:
        raise _fail(str(exc)) from exc
    limit_native_threads()
    settings = ws.settings.serve
    host, port = host or settings.host, port or settings.port
    url = f"http://{host}:{port}"
    console.print(f"ShopFusion on {url}  (storefront {url}/, API docs {url}/docs, admin {url}/admin; Ctrl+C stops)")
    uvicorn.run(api, host=host, port=port, log_level="warning", access_log=False)


@models_app.command("list")
def models_list(workspace: WorkspaceOpt = Path("workspace")) -> None:
    """Builds kept in the workspace; the served one is marked."""
    ws = _open(workspace)
    for version in ws.model_versions():
        manifest = read_manifest(ws.models_dir / version)
        mark = "*" if version == ws.current_version else " "
        console.print(f"{mark} {version}  items={manifest['items']}  events={manifest['events']}")


@models_app.command("rollback")
def models_rollback(version: str, workspace: WorkspaceOpt = Path("workspace")) -> None:
    """Serve an earlier build again (a running server picks it up on POST /admin/reload)."""
    ws = _open(workspace)
    try:
        ws.activate(version)
    except WorkspaceError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"now serving {version}")

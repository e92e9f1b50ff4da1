"""The `shopfusion` command line: one app, its commands defined by topic in the modules beside this one."""

from __future__ import annotations

import typer

from shopfusion.cli.demo import demo
from shopfusion.cli.evaluation import eval_app
from shopfusion.cli.query import recommend, search
from shopfusion.cli.serving import keys_app, models_app, serve
from shopfusion.cli.training import build_command, train_app
from shopfusion.cli.workspace import ingest, init, stats

app = typer.Typer(
    help="ShopFusion: product search and recommendations from your catalogue and behaviour events.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(eval_app, name="eval")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.add_typer(train_app, name="train")
app.command()(init)
app.command()(ingest)
app.command("build")(build_command)
app.command()(stats)
app.command()(search)
app.command()(recommend)
app.command()(demo)
app.command()(serve)

__all__ = ["app"]

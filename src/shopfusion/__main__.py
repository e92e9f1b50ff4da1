"""`python -m shopfusion` is the `shopfusion` command."""

from shopfusion.cli import app

app()

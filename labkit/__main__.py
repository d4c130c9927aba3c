"""``python -m labkit ...`` is the ``labkit`` command."""

from .cli.main import app

app(prog_name="labkit")

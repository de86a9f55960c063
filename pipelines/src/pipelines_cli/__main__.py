"""``python -m pipelines_cli``: the same CLI as the ``pipelines`` script."""

from pipelines_cli.cli import main

main()

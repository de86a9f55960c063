"""The commands of the ``pipelines`` CLI, one module each; ``pipelines_cli.cli`` registers them."""

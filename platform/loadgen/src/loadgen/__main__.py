"""`python -m loadgen`: see loadgen.cli."""

from loadgen.cli import app

app(prog_name="loadgen")

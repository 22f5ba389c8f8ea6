"""Run the command line as ``python -m yupnope``."""

from yupnope.cli import cli

cli(prog_name="yupnope")

"""The `smcl-tune` command. Exit codes: 0 success, 1 failure while running, 2 bad input."""

from smcl_tune.cli.app import main

__all__ = ["main"]

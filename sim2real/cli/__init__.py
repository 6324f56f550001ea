"""The ``sim2real`` command. See :mod:`sim2real.cli.main`."""

from sim2real.cli.main import main

__all__ = ["main"]

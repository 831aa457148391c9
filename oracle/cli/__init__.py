"""The `snaptree` command line: a thin shell over the library (``snaptree.oracle``), one module
per command family."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]

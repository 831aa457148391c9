"""Trees drawn by Graphviz (`show --format svg`, the `diff` page)."""

from __future__ import annotations

import shutil
import subprocess

from snaptree.model import Machine, notation

from ..errors import UsageError


def svg(machine: Machine) -> str:
    """The tree drawn by Graphviz, as SVG."""
    dot = shutil.which("dot")
    if dot is None:
        raise UsageError("Graphviz 'dot' is not installed (apt-get install graphviz); --format dot prints the "
                         "graph for another renderer")
    try:
        drawn = subprocess.run([dot, "-Tsvg"], input=notation.dot(machine).encode(), capture_output=True,
                               timeout=60, check=True).stdout
    except subprocess.CalledProcessError as error:
        raise UsageError(f"Graphviz 'dot' failed: {error.stderr.decode(errors='replace').strip()}") from None
    except subprocess.TimeoutExpired:
        raise UsageError("Graphviz 'dot' took more than 60 s; --format dot prints the graph") from None
    return drawn.decode()

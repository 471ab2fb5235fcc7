"""``python -m seatgate.core.entrypoints.demo``: the same as ``seatgate demo`` (see
:mod:`seatgate.core.entrypoints.cli.demo`)."""

from __future__ import annotations

import sys

from .cli.demo import main

if __name__ == "__main__":
    main("--json" in sys.argv[1:])

"""``python -m cma``: see :mod:`cma.cli`."""

from __future__ import annotations

import sys

from cma.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m zerodown.traffic.proxy``: run the built-in data plane (see ``cli.main``)."""

from __future__ import annotations

import sys

from zerodown.traffic.proxy.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())

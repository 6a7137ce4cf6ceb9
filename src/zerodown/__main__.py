"""``python -m zerodown``: the same as the ``zerodown`` command."""

import sys

from zerodown.cli.app import main

sys.exit(main())

"""``python -m errorkit``: the ``errorkit`` command line."""

import sys

from errorkit.cli import main

sys.exit(main())

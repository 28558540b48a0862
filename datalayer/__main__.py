"""``python -m datalayer``: the same as the ``datalayer`` console script."""

import sys

from datalayer.cli import main

sys.exit(main())

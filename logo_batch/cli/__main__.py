"""``python -m logo_batch.cli COMMAND ...``: the ``logo-batch`` command."""

import sys

from logo_batch.cli import main

sys.exit(main())

"""``python -m engine.cli``: the ``kestrel`` command."""

import sys

from engine.cli import main

sys.exit(main())

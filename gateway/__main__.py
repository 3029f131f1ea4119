"""``python -m gateway`` is the ``relaygate`` command."""

import sys

from gateway.cli import main

sys.exit(main())

"""``python -m gateway`` is the ``relaygate`` command."""

import sys

from gateway.cli.main import main

sys.exit(main())

"""``python -m clusterjob.cli``: the ``clusterjob`` command."""

import sys

from clusterjob.cli import main

sys.exit(main())

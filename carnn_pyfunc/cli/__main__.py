"""`python -m carnn_pyfunc.cli ...`: the same as the `carnn` command."""

import sys

from carnn_pyfunc.cli import main

sys.exit(main())

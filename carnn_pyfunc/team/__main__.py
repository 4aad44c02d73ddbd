"""``python -m carnn_pyfunc.team start | status | stop | backup DIR | restore DIR``."""

import sys

from carnn_pyfunc.team.control import main

sys.exit(main())

"""Score a file of cars with a registered model (`python score.py -h`); the file `spark-submit`
runs on a cluster (`spark-submit ... score.py INPUT OUTPUT --engine spark`)."""

import sys

from carnn_pyfunc.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))

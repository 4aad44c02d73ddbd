"""Train the carnn network, log the run to MLflow and register the model: `python train.py -h`."""

import sys

from carnn_pyfunc.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))

"""The container's health check: exit 0 when `carnn serve` answers GET /ping on this machine.

    python -m carnn_pyfunc.healthcheck      # port: $CARNN_PORT (the image sets 8080)

The Dockerfile's HEALTHCHECK and the Kubernetes liveness probe run this same command. Its words
hold no spaces and no shell syntax because podman (4.3) joins an exec probe's words into one shell
line, while Kubernetes runs them as given: both run it alike. Standard library only (it runs every
few seconds, beside the server, under the pod's memory limit).
"""

from __future__ import annotations

import os
import sys
import urllib.request

TIMEOUT_S = 4  # under the probe's and the HEALTHCHECK's 5 s timeout


def main() -> int:
    port = os.environ.get("CARNN_PORT", "8080")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=TIMEOUT_S) as answer:
            return 0 if answer.status == 200 else 1
    except OSError as err:  # refused, timed out, or an HTTP error status
        print(f"GET /ping on port {port}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

# The production model behind `carnn serve` (MLflow's /invocations protocol, OpenAPI, metrics).
#
#   carnn export                  # writes build/model from models:/carnn@production
#   docker build -t carnn .
#   docker run --rm -p 8080:8080 -e CARNN_WORKERS=2 -e CARNN_API_TOKEN=... carnn
#
# A read-only root works (--read-only): with CARNN_WORKERS above 1 the workers' metrics need a
# writable /tmp (--tmpfs /tmp; Kubernetes: the Deployment's emptyDir). CI builds and runs this
# image with podman (tests/test_container.py; `podman build --format docker` keeps HEALTHCHECK),
# and tests/test_docker.py performs its steps in a fresh virtualenv.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CARNN_HOST=0.0.0.0 \
    CARNN_PORT=8080 \
    CARNN_WORKERS=1

# A numeric, non-root user (Kubernetes' runAsNonRoot can verify it).
RUN groupadd --gid 10001 carnn \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin carnn

WORKDIR /opt/carnn

# The model's own exact pins (written when it was logged), in a layer of their own. No .pyc files:
# ~110 MB less, ~1.7 s more at start (the root filesystem may be read-only, so none are cached).
# In the same layer, what serving never loads goes (~80 MB): the libraries' test suites,
# pyarrow's headers, Cython sources and Arrow Flight (RPC), LiteRT's GPU and NPU accelerators
# and tools. tests/test_container.py serves every input format from this image.
COPY build/model/requirements.txt model/requirements.txt
RUN pip install --no-compile --requirement model/requirements.txt \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && rm -rf "$site"/pandas/tests "$site"/numpy/tests "$site"/numpy/*/tests \
        "$site"/pyarrow/tests "$site"/pyarrow/include "$site"/pyarrow/src \
        "$site"/pyarrow/*.pyx "$site"/pyarrow/*.pxd "$site"/pyarrow/includes \
        "$site"/pyarrow/libarrow_flight.so* "$site"/pyarrow/_flight.*.so \
        "$site"/pyarrow/libarrow_python_flight.so* \
        "$site"/ai_edge_litert/libLiteRtWebGpuAccelerator.so "$site"/ai_edge_litert/vendors \
        "$site"/ai_edge_litert/tools

# The carnn package for `carnn serve`: its serving dependencies only (no training extra).
COPY pyproject.toml README.md src/
COPY carnn_pyfunc/ src/carnn_pyfunc/
RUN pip install --no-compile ./src

COPY build/model/ model/

USER 10001:10001
EXPOSE 8080
# GET /ping on CARNN_PORT; the Kubernetes liveness probe runs the same command.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-m", "carnn_pyfunc.healthcheck"]

# Host, port, workers and the token come from CARNN_HOST, CARNN_PORT, CARNN_WORKERS and
# CARNN_API_TOKEN.
CMD ["carnn", "serve", "--model-uri", "/opt/carnn/model"]

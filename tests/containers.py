"""Containers for the slow tier: podman (Debian's packages, root, runc), a local stand-in for
``python:3.11-slim``, the project's image built offline, and containers that are always removed.

No image registry is reachable here, so the base images are made once (``provision``, run by
``.ci/run`` like its apt-get: the only steps that use the network, debootstrap and apt from the
Debian mirror apt uses and pip download for MLflow's image; the tests only check that the bases
exist and fail when they do not). Builds read pip packages from
the wheelhouse ``make dev`` downloads, mounted read-only into the build with a pip config that
forbids the index, and run with ``--network none``: the Dockerfile itself is not changed.

    .venv/bin/python -m tests.containers provision   # the bases (skipped when present)
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTAINERS_CONF = ROOT / "deploy" / "podman" / "containers.conf"
# The pinned wheels `make dev` downloads (the model's and carnn serve's requirements).
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"

BASE = "docker.io/library/python:3.11-slim"  # the Dockerfile's FROM
BASE_LABEL = "carnn.test-base"  # marks our stand-ins (podman image inspect shows it)
SUITE = "bookworm"  # python:3.11-slim is Debian 12; its python3 is 3.11
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SLIM_EXCLUDED = ("doc", "man", "info", "locale", "groff", "lintian", "linda")
EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")  # the host's own CA certificates

MLFLOW_BASE_CONTAINERFILE = """FROM {base}
RUN apt-get update && apt-get install -y --no-install-recommends nginx \\
    && rm -rf /var/lib/apt/lists/* /etc/apt/sources.list /etc/apt/sources.list.d/*
COPY wheels/ /wheels/
RUN printf '[global]\\nno-index = true\\nfind-links = /wheels\\n' > /etc/pip.conf
LABEL carnn.test-base=mlflow-offline
"""

# What a build's RUN steps read: the wheelhouse, never the index (mounted only during the build).
OFFLINE_PIP_CONF = "[global]\nno-index = true\nfind-links = /wheels\n"


def env() -> dict[str, str]:
    """This environment with podman pointed at the project's containers.conf."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``podman ARGS`` (output captured as text); raises with podman's stderr on failure."""
    proc = subprocess.run(
        ["podman", *args], env=env(), capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"podman {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
        )
    return proc


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def image_mb(name: str) -> float:
    """The image's size as podman reports it (all layers, uncompressed), in MB (10^6 bytes)."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", name).stdout) / 1e6


# ------------------------------------------------------------------------------- bases
def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt uses here (the first URI serving the bookworm suite)."""
    for path in sorted((sources / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if re.match(r"^\w[\w-]*:", line)
            )
            if SUITE in fields.get("Suites", "").split():
                return fields["URIs"].split()[0]
    listed = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*.list"))]
    for path in listed:
        if path.exists():
            for line in path.read_text().splitlines():
                words = line.split("#")[0].split()
                if len(words) >= 3 and words[0] == "deb" and SUITE in words:
                    return next(w for w in words[1:] if "://" in w)
    raise RuntimeError(f"no Debian mirror for {SUITE} in {sources}")


def make_rootfs(rootfs: Path) -> None:
    """A minimal Debian 12 with Python 3.11 and pip, set up as python:3.11-slim is: python and
    pip on /usr/local/bin, pip allowed to install (no EXTERNALLY-MANAGED), no caches."""
    subprocess.run(
        ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,python3-pip",
         SUITE, str(rootfs), debian_mirror()],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    for name in ("python", "python3", "pip", "pip3"):  # where python:3.11-slim has them
        target = "python3" if name.startswith("python") else "pip3"
        (rootfs / "usr" / "local" / "bin" / name).symlink_to(f"/usr/bin/{target}")
    for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    # HTTPS from inside a container needs the host's extra CAs (an egress proxy signs with them).
    for cert in EXTRA_CA_DIR.glob("*.crt"):
        shutil.copy2(cert, rootfs / "usr" / "local" / "share" / "ca-certificates" / cert.name)
    update = ["chroot", str(rootfs), "update-ca-certificates"]
    subprocess.run(update, check=True, capture_output=True)
    for cache in rootfs.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    # Slim as Debian's -slim images are: no manuals, docs (copyright kept), translations.
    excludes = [f"path-exclude /usr/share/{folder}/*" for folder in SLIM_EXCLUDED]
    (rootfs / "etc" / "dpkg" / "dpkg.cfg.d" / "docker-slim").write_text(
        "\n".join([*excludes, "path-include /usr/share/doc/*/copyright", ""])
    )
    for folder in SLIM_EXCLUDED:
        for path in (rootfs / "usr" / "share" / folder).glob("*"):
            if folder == "doc" and path.is_dir() and not path.is_symlink():
                for item in path.iterdir():
                    if item.name != "copyright":
                        _remove(item)
            else:
                _remove(path)
    for pattern in ("var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb"):
        for path in rootfs.glob(pattern):
            if path.is_file():
                path.unlink()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def import_rootfs(rootfs: Path, tag: str, *tags: str) -> None:
    """``tar | podman import`` with python:3.11-slim's environment, tagged."""
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        ["podman", "import",
         "--change", f"ENV PATH={PATH_ENV}", "--change", "ENV LANG=C.UTF-8",
         "--change", f"LABEL {BASE_LABEL}=debootstrap-{SUITE}",
         "--change", 'CMD ["python3"]', "-", tag],
        stdin=tar.stdout, env=env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    tar.stdout.close()
    if tar.wait() != 0 or imported.returncode != 0:
        raise RuntimeError(f"podman import failed: {imported.stderr[-2000:]}")
    for name in tags:
        podman("tag", tag, name)


def ensure_base(tag: str = BASE) -> bool:
    """The python:3.11-slim stand-in (debootstrap, about a minute); False when it was there."""
    if image_exists(tag):
        return False
    with tempfile.TemporaryDirectory(prefix="carnn-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        make_rootfs(rootfs)
        import_rootfs(rootfs, "localhost/py311-base", tag)
    return True


def mlflow_base_tag() -> str:
    """The base `mlflow models build-docker` asks for: python:<the model's Python>-slim."""
    return f"docker.io/library/python:{platform.python_version()}-slim"


def mlflow_wheels(dest: Path) -> None:
    """What MLflow's generated Dockerfile installs, as wheels: mlflow itself, the model's
    build dependencies (this environment's pip, setuptools, wheel: what MLflow records) and
    requirements, and gunicorn[gevent] (downloaded: this needs the package index)."""
    from carnn_pyfunc.versions import model_requirements

    pins = [f"mlflow=={metadata.version('mlflow')}", "gunicorn[gevent]"]
    pins += [f"{tool}=={metadata.version(tool)}" for tool in ("pip", "setuptools", "wheel")]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest),
         "--only-binary", ":all:", *pins, *model_requirements()],
        check=True, timeout=1200,
    )  # fmt: skip


def ensure_mlflow_base(tag: str | None = None) -> bool:
    """A stand-in for python:3.11.X-slim on which `mlflow models build-docker --env-manager
    local` builds offline: nginx already installed and no package sources (its `apt-get update`
    and `apt-get install nginx` find nothing to do), pip reading a wheelhouse inside the image.
    Test-only: made from the python:3.11-slim stand-in; False when it was there."""
    tag = tag or mlflow_base_tag()
    if image_exists(tag):
        return False
    require_base()
    with tempfile.TemporaryDirectory(prefix="carnn-mlflow-base-") as tmp:
        context = Path(tmp)
        mlflow_wheels(context / "wheels")
        (context / "Containerfile").write_text(MLFLOW_BASE_CONTAINERFILE.format(base=BASE))
        podman("build", "--pull=never", "--format", "docker", "--tag", tag, str(context),
               timeout=900)  # fmt: skip
    return True


def require_base(tag: str = BASE) -> None:
    """Fail loudly (no skip) when the base is missing: the tests do not use the network."""
    if not image_exists(tag):
        raise RuntimeError(
            f"no {tag} image: run `.venv/bin/python -m tests.containers provision` once "
            "(debootstrap from the Debian mirror; .ci/run does it)"
        )


# ------------------------------------------------------------------------------ builds
def dockerfile_healthcheck() -> list[str]:
    """The Dockerfile HEALTHCHECK's CMD (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return json.loads(re.search(r"^HEALTHCHECK .*? CMD (\[.*\])$", text, re.M).group(1))


def offline_build(context: Path, tag: str, *args: str, timeout: float = 900) -> float:
    """``podman build`` of ``context`` with no network: pip reads the wheelhouse through a pip
    config mounted only for the build (the image is what a normal build makes). Seconds."""
    if not any(WHEELHOUSE.glob("*.whl")):
        raise RuntimeError(f"no wheelhouse at {WHEELHOUSE}: make dev")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="carnn-pip-") as tmp:
        pip_conf = Path(tmp) / "pip.conf"
        pip_conf.write_text(OFFLINE_PIP_CONF)
        podman(
            "build", "--pull=never", "--format", "docker", "--network", "none",
            "--volume", f"{WHEELHOUSE}:/wheels:ro", "--volume", f"{pip_conf}:/etc/pip.conf:ro",
            "--tag", tag, *args, str(context),
            timeout=timeout,
        )  # fmt: skip
    return time.perf_counter() - start


def image_context(model_dir: Path, context: Path) -> Path:
    """The Dockerfile's build context: the Dockerfile, what .dockerignore admits (the package's
    source, pyproject.toml, README.md) and ``model_dir`` (``carnn export``) as build/model."""
    context.mkdir(parents=True, exist_ok=True)
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, context / name)
    shutil.copytree(ROOT / "carnn_pyfunc", context / "carnn_pyfunc",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(model_dir, context / "build" / "model")
    return context


def remove_image(name: str) -> None:
    podman("rmi", "--force", name, check=False, timeout=120)


@dataclass(frozen=True)
class Image:
    name: str
    build_s: float
    mb: float


@contextlib.contextmanager
def project_image(model_uri: str, workdir: Path) -> Iterator[Image]:
    """The project's Dockerfile built (offline) around ``model_uri`` as ``carnn export`` writes
    it; the image is removed at the end."""
    from carnn_pyfunc import cli

    require_base()
    model = workdir / "model"
    if cli.main(["export", "--model-uri", model_uri, "--output", str(model)]) != 0:
        raise RuntimeError(f"carnn export {model_uri} failed")
    name = f"localhost/carnn-test:{uuid.uuid4().hex[:8]}"
    build_s = offline_build(image_context(model, workdir / "context"), name)
    try:
        yield Image(name, build_s, image_mb(name))
    finally:
        remove_image(name)


@contextlib.contextmanager
def docker_socket(workdir: Path, within_s: float = 60) -> Iterator[str]:
    """podman's Docker-compatible API (``podman system service``) on a Unix socket of our own
    until the block ends; yields the DOCKER_HOST value for docker clients (and MLflow)."""
    # A short path of its own: a Unix socket's path holds at most 107 bytes.
    socket_path = Path(tempfile.mkdtemp(prefix="carnn-sock-")) / "podman.sock"
    with open(workdir / "podman-service.log", "wb") as log:
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
            env=env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + within_s
        while not _docker_pings(socket_path):
            if service.poll() is not None or time.monotonic() > deadline:
                log_text = (workdir / "podman-service.log").read_text(errors="replace")
                raise RuntimeError(f"podman system service did not answer:\n{log_text[-2000:]}")
            time.sleep(0.1)
        yield f"unix://{socket_path}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        shutil.rmtree(socket_path.parent, ignore_errors=True)


def _docker_pings(socket_path: Path) -> bool:
    """GET /_ping on the Docker API's Unix socket answers OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(socket_path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
            status_line = sock.recv(4096).split(b"\r\n", 1)[0]
            return status_line.startswith(b"HTTP/1.") and status_line.split()[1:2] == [b"200"]
    except OSError:
        return False


# -------------------------------------------------------------------------- containers
def free_port() -> int:
    from carnn_pyfunc.processes import free_port as free

    return free()


def pings(port: int, path: str = "/ping", timeout: float = 2) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False


@dataclass
class Container:
    """A running container whose port 8080 is published on 127.0.0.1:``port``."""

    name: str
    port: int
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inspect(self) -> dict:
        return json.loads(podman("container", "inspect", self.name).stdout)[0]

    def logs(self) -> str:
        proc = podman("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def exec(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return podman("exec", self.name, *command, timeout=timeout, check=False)

    def healthcheck(self) -> str:
        """``podman healthcheck run``: "healthy", or what it printed otherwise."""
        proc = podman("healthcheck", "run", self.name, check=False, timeout=60)
        return "healthy" if proc.returncode == 0 else (proc.stdout + proc.stderr).strip()

    def running(self) -> bool:
        return self.inspect()["State"]["Running"]

    def wait_for_log(self, line: str, times: int = 1, within_s: float = 60) -> float:
        """Wait until ``line`` is in the log ``times`` times; seconds waited."""
        start = time.perf_counter()
        while (seen := self.logs().count(line)) < times:
            if not self.running():
                raise RuntimeError(f"{self.name} exited:\n{self.logs()[-3000:]}")
            if time.perf_counter() - start > within_s:
                raise RuntimeError(f"{line!r} {seen} times in {within_s:.0f} s in {self.name}")
            time.sleep(0.1)
        return time.perf_counter() - start


def wait_ready(
    container: Container, deadline_s: float = 120, path: str = "/ping", start: float | None = None
) -> float:
    """Poll ``path`` through the published port until it answers 200; seconds since ``start``."""
    start = time.perf_counter() if start is None else start
    while not pings(container.port, path):
        if not container.running():
            raise RuntimeError(f"{container.name} exited:\n{container.logs()[-3000:]}")
        if time.perf_counter() - start > deadline_s:
            raise RuntimeError(f"{container.name} not up in {deadline_s:.0f} s:\n"
                               f"{container.logs()[-3000:]}")  # fmt: skip
        time.sleep(0.05)
    return time.perf_counter() - start


@contextlib.contextmanager
def running(
    image: str,
    *run_args: str,
    env_vars: dict[str, str] | None = None,
    container_port: int = 8080,
    wait: bool = True,
    deadline_s: float = 120,
    command: tuple[str, ...] = (),
) -> Iterator[Container]:
    """``podman run -d`` of ``image`` with ``container_port`` published on a free 127.0.0.1
    port; waits for /ping from the host (``wait``); the container is always removed."""
    container = Container(f"carnn-test-{uuid.uuid4().hex[:10]}", free_port())
    flags = [f"--env={k}={v}" for k, v in (env_vars or {}).items()]
    start = time.perf_counter()
    podman("run", "--detach", "--name", container.name,
           "--publish", f"127.0.0.1:{container.port}:{container_port}",
           *flags, *run_args, image, *command)  # fmt: skip
    try:
        if wait:
            container.startup_s = wait_ready(container, deadline_s, start=start)
        yield container
    finally:
        podman("rm", "--force", "--time", "0", container.name, check=False)


# Inside a container: every process's command, parent, resident memory, and which libraries of
# the model stack its address space maps.
_PROCESSES = """
import json, os
stack = %r
out = []
for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
    if pid == os.getpid():
        continue
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode().strip()
        status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
        maps = open(f"/proc/{pid}/maps").read()
        rollup = dict(l.split(":", 1) for l in open(f"/proc/{pid}/smaps_rollup") if ":" in l)
    except OSError:
        continue
    out.append({"pid": pid, "ppid": int(status["PPid"]), "cmd": cmd,
                "rss_mb": int(rollup["Rss"].split()[0]) / 1024,
                "pss_mb": int(rollup["Pss"].split()[0]) / 1024,
                "maps": sorted(s for s in stack if s in maps)})
print(json.dumps(out))
"""


def processes(container: Container, libraries: tuple[str, ...] = ()) -> list[dict]:
    """Every process in ``container``: pid, ppid, cmd, rss_mb, pss_mb, and which of
    ``libraries`` (substrings of mapped file names) its address space maps."""
    proc = container.exec("python", "-c", _PROCESSES % (libraries,))
    if proc.returncode != 0:
        raise RuntimeError(f"reading {container.name}'s processes: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- kube play
def create_kube_secret(name: str, data: dict[str, str]) -> None:
    """A podman secret that ``podman kube play`` (4.3) hands to an env ``secretKeyRef``: a JSON
    object of key -> base64 value (a Secret played from YAML is stored in a form its env lookup
    cannot read: "not valid JSON")."""
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    proc = subprocess.run(
        ["podman", "secret", "create", name, "-"],
        input=json.dumps(encoded), env=env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"podman secret create {name}: {proc.stderr}")


def remove_secret(name: str) -> None:
    podman("secret", "rm", name, check=False)


@dataclass
class Played:
    """What ``podman kube play`` answered, and the pod's one container."""

    proc: subprocess.CompletedProcess
    container: Container


@contextlib.contextmanager
def kube_play(manifest: Path, container_name: str, port: int) -> Iterator[Played]:
    """``podman kube play manifest``; the pods it made are always removed (``kube down``)."""
    proc = podman("kube", "play", str(manifest), check=False, timeout=300)
    try:
        yield Played(proc, Container(container_name, port))
    finally:
        podman("kube", "down", str(manifest), check=False, timeout=120)


def main(argv: list[str]) -> int:
    if argv[1:] != ["provision"]:
        print(__doc__)
        return 2
    for tag, ensure in ((BASE, ensure_base), (mlflow_base_tag(), ensure_mlflow_base)):
        made = ensure()
        print(f"{tag}: {'made' if made else 'present'}, {image_mb(tag):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

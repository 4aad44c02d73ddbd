"""The libraries a logged model depends on, and their installed versions.

``python -m carnn_pyfunc.versions`` prints them as pip requirements, one per line; with
``--serving``, what the Docker image installs for `carnn serve` (the Makefile downloads both sets
of wheels for the Docker test).
"""

from __future__ import annotations

from importlib import metadata

BUILD_BACKEND = "setuptools>=69"  # pyproject.toml's [build-system] requires
PINNED_LIBRARIES = ("mlflow", "tensorflow", "keras", "scikit-learn", "pandas", "numpy", "joblib")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries the model depends on."""
    return {lib: metadata.version(lib) for lib in PINNED_LIBRARIES}


def pip_requirements() -> list[str]:
    """Exact pins of the installed libraries: the model's requirements when it is logged."""
    return [f"{lib}=={version}" for lib, version in library_versions().items()]


def serving_requirements() -> list[str]:
    """What installing the carnn package (without extras) pulls in, plus its build backend: the
    pins the Docker image installs for `carnn serve`, read from the installed distribution."""
    required = metadata.requires("carnn") or []
    pins = [r.split(";")[0].strip() for r in required if "extra ==" not in r]
    return [*pins, BUILD_BACKEND]


if __name__ == "__main__":
    import sys

    wanted = serving_requirements() if "--serving" in sys.argv[1:] else pip_requirements()
    print("\n".join(wanted))

"""The libraries a logged model depends on, and their installed versions.

Two sets: what the model was trained with (recorded in its contract, compared at load), and what
serving it needs (the model's pip requirements: no TensorFlow, no scikit-learn).
``python -m carnn_pyfunc.versions`` prints the model's requirements, one per line; with
``--serving``, what the Docker image installs for `carnn serve` (the Makefile downloads both sets
of wheels for the Docker test).
"""

from __future__ import annotations

from importlib import metadata

BUILD_BACKEND = "setuptools>=69"  # pyproject.toml's [build-system] requires
TRAINED_WITH = ("mlflow", "tensorflow", "keras", "scikit-learn", "pandas", "numpy")
SERVED_WITH = ("mlflow-skinny", "pandas", "numpy", "pyarrow", "ai-edge-litert")


def _installed(libraries: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for lib in libraries:
        try:
            found[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue  # a serving environment has no training libraries
    return found


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a model is trained with (those installed here)."""
    return _installed(TRAINED_WITH)


def model_requirements() -> list[str]:
    """Exact pins of what serving a model needs: its pip requirements when it is logged."""
    return [f"{lib}=={version}" for lib, version in _installed(SERVED_WITH).items()]


def training_requirements() -> list[str]:
    """Exact pins of the training libraries (for models that run Keras themselves)."""
    return [f"{lib}=={version}" for lib, version in library_versions().items()]


def serving_requirements() -> list[str]:
    """What installing the carnn package (without extras) pulls in, plus its build backend: the
    pins the Docker image installs for `carnn serve`, read from the installed distribution."""
    required = metadata.requires("carnn") or []
    pins = [r.split(";")[0].strip() for r in required if "extra ==" not in r]
    return [*pins, BUILD_BACKEND]


if __name__ == "__main__":
    import sys

    wanted = serving_requirements() if "--serving" in sys.argv[1:] else model_requirements()
    print("\n".join(wanted))

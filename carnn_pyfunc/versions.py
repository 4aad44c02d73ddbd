"""The libraries a logged model depends on, and their installed versions.

``python -m carnn_pyfunc.versions`` prints them as pip requirements, one per line (the Makefile
downloads their wheels for the Docker test).
"""

from __future__ import annotations

from importlib import metadata

PINNED_LIBRARIES = ("mlflow", "tensorflow", "keras", "scikit-learn", "pandas", "numpy", "joblib")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries the model depends on."""
    return {lib: metadata.version(lib) for lib in PINNED_LIBRARIES}


def pip_requirements() -> list[str]:
    """Exact pins of the installed libraries: the model's requirements when it is logged."""
    return [f"{lib}=={version}" for lib, version in library_versions().items()]


if __name__ == "__main__":
    print("\n".join(pip_requirements()))

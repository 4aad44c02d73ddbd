"""One pinned environment, described identically in pyproject, python_env, conda and MLproject."""

from __future__ import annotations

import tomllib
from dataclasses import fields

import yaml

from carnn_pyfunc.config import TrainConfig
from carnn_pyfunc.versions import library_versions
from tests.helpers import ROOT


def pyproject_pins() -> set[str]:
    """The runtime pins and the train extra's: what an MLflow project run needs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [*project["dependencies"], *project["optional-dependencies"]["train"]]
    assert all("==" in dep for dep in pins)
    return set(pins)


def test_python_env_and_conda_repeat_the_pyproject_pins():
    python_env = yaml.safe_load((ROOT / "python_env.yaml").read_text())
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    conda_pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert set(python_env["dependencies"]) == pyproject_pins()
    assert set(conda_pip) == pyproject_pins()
    assert python_env["python"] == "3.11"
    assert "python=3.11" in conda["dependencies"]


def test_installed_libraries_are_the_pinned_ones():
    pins = dict(pin.split("==") for pin in pyproject_pins())
    for lib, version in library_versions().items():
        assert pins[lib] == version, lib


def test_mlproject_parameters_mirror_the_training_config():
    project = yaml.safe_load((ROOT / "MLproject").read_text())
    main = project["entry_points"]["main"]
    params = main["parameters"]
    config = {f.name: f.default for f in fields(TrainConfig)}
    assert set(params) == set(config) - {"experiment_name"}
    for name, spec in params.items():
        assert f"--{name.replace('_', '-')} {{{name}}}" in main["command"]
        if name != "data_path":
            assert spec["default"] == config[name], name

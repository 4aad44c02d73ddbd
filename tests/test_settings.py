"""`carnn serve`'s settings: every one from a flag or its CARNN_ variable (the flag wins), every
variable the image and the manifests set is one the program reads, and secrets fail closed."""

from __future__ import annotations

import re

import click
import mlflow.environment_variables
import pytest
import yaml

from carnn_pyfunc.cli import main
from carnn_pyfunc.cli.serve import serve, variables
from carnn_pyfunc.serving.settings import MissingSecret, Settings, resolve_token
from tests.helpers import ROOT

# Variables the image sets for programs other than ours (Python and pip read them).
OTHERS = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR",
          "PIP_DISABLE_PIP_VERSION_CHECK", "PATH", "LANG"}  # fmt: skip
TOKEN = "a-token-of-twenty-chars"
_ENVIRONMENT = mlflow.environment_variables
MLFLOW_VARIABLES = {v.name for v in vars(_ENVIRONMENT).values()
                    if isinstance(v, _ENVIRONMENT._EnvironmentVariable)}  # fmt: skip


def dockerfile_variables() -> set[str]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    names = set()
    for line in text.splitlines():
        if line.strip().upper().startswith("ENV "):
            names |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", line))
    return names


def manifest_variables() -> set[str]:
    names = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "env" and isinstance(value, list):
                    names.update(item["name"] for item in value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in sorted((ROOT / "deploy").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            walk(document)
    return names


def parsed(args: list[str], monkeypatch, **env: str) -> dict:
    for name in variables():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return serve.make_context("serve", list(args)).params


def test_every_variable_the_image_and_the_manifests_set_is_read_by_the_program():
    read = set(variables())
    set_by_image = dockerfile_variables()
    set_by_manifests = manifest_variables()
    assert {"CARNN_HOST", "CARNN_PORT", "CARNN_WORKERS"} <= set_by_image
    assert set_by_manifests  # the Deployment sets some
    theirs = {n for n in set_by_image | set_by_manifests if n.startswith("MLFLOW_")}
    assert theirs <= MLFLOW_VARIABLES  # the tracking server's address and user: MLflow reads them
    assert (set_by_image | set_by_manifests) - OTHERS - theirs <= read


def test_the_check_notices_a_variable_nobody_reads():
    assert "CARNN_HOSTNAME" not in variables()  # a plausible typo is not silently accepted


def test_every_option_has_a_variable_shown_in_help():
    names = variables()
    assert set(names) >= {"CARNN_HOST", "CARNN_PORT", "CARNN_WORKERS", "CARNN_MODEL_URI",
                          "CARNN_API_TOKEN", "CARNN_TOKEN_FILE", "CARNN_REQUIRE_AUTH",
                          "CARNN_MAX_ROWS", "CARNN_MAX_IN_FLIGHT", "CARNN_TIMEOUT"}  # fmt: skip
    text = serve.get_help(click.Context(serve, info_name="serve", auto_envvar_prefix="CARNN"))
    for name in names:
        assert name in text


@pytest.mark.parametrize(
    ("variable", "value", "param", "expected"),
    [
        ("CARNN_HOST", "0.0.0.0", "host", "0.0.0.0"),
        ("CARNN_PORT", "8080", "port", 8080),
        ("CARNN_WORKERS", "2", "workers", 2),
        ("CARNN_MODEL_URI", "/opt/carnn/model", "model_uri", "/opt/carnn/model"),
        ("CARNN_REQUIRE_AUTH", "true", "require_auth", True),
        ("CARNN_MAX_ROWS", "500", "max_rows", 500),
        ("CARNN_TIMEOUT", "2.5", "timeout", 2.5),
        ("CARNN_CORS_ORIGIN", "https://a.example https://b.example", "cors_origin",
         ("https://a.example", "https://b.example")),
    ],
)  # fmt: skip
def test_a_variable_sets_its_option(monkeypatch, variable, value, param, expected):
    assert parsed([], monkeypatch, **{variable: value})[param] == expected


def test_the_flag_wins_over_the_variable(monkeypatch):
    params = parsed(["--host", "127.0.0.1", "--workers", "3"], monkeypatch,
                    CARNN_HOST="0.0.0.0", CARNN_WORKERS="2")  # fmt: skip
    assert (params["host"], params["workers"]) == ("127.0.0.1", 3)


def test_a_bad_variable_is_an_error_naming_it(monkeypatch):
    with pytest.raises(click.BadParameter) as caught:
        parsed([], monkeypatch, CARNN_WORKERS="two")
    assert "'--workers'" in caught.value.format_message()


def test_a_token_from_a_file_or_the_environment_is_stripped(tmp_path):
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n")
    assert resolve_token(None, str(path), required=True) == TOKEN
    assert resolve_token(f"{TOKEN}\n", None, required=True) == TOKEN


@pytest.mark.parametrize("given", [None, "", " \n"])
def test_required_auth_without_a_token_fails_closed(given):
    with pytest.raises(MissingSecret, match="CARNN_API_TOKEN or CARNN_TOKEN_FILE"):
        resolve_token(given, None, required=True)
    assert resolve_token(given, None, required=False) is None  # auth off only when not required


def test_an_unreadable_token_file_is_an_error_not_no_auth(tmp_path):
    with pytest.raises(ValueError, match="CARNN_TOKEN_FILE"):
        resolve_token(None, str(tmp_path / "missing"), required=False)


def test_serve_refuses_to_start_without_the_required_token(monkeypatch, capsys):
    for name in variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CARNN_REQUIRE_AUTH", "1")
    assert main(["serve", "--model-uri", "/nowhere"]) == 2  # before any model is loaded
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("Error: CARNN_REQUIRE_AUTH is set but no token was given: set "
                       "CARNN_API_TOKEN or CARNN_TOKEN_FILE")  # fmt: skip


def test_settings_reach_the_workers_whole():
    settings = Settings(model_uri="/m", token=TOKEN, cors_origins=("https://a.example",),
                        max_rows=7, max_in_flight=3, timeout_s=1.5)  # fmt: skip
    assert Settings.from_env(settings.to_env()) == settings
    assert Settings.from_env({}) == Settings()

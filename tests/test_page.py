"""The web page of `carnn serve` in a real headless browser (Debian's Chromium driven by
Playwright; no browser download) against a real server on 127.0.0.1: the form, a field error
next to its field, the CSV round trip, the token. Also /score.csv over plain HTTP.

``CARNN_SCREENSHOT=docs/page.png`` also writes the README's screenshot of the answered form.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from carnn_pyfunc.contract import FIELDS
from tests.helpers import ROOT, SEED_RECORD, carnn_server, subprocess_env

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"  # Debian's package; .ci/run installs it
TOKEN = "a-page-test-token-of-some-length"
LABELS = {f.name: f.label for f in FIELDS}
CSV_TEXT = (
    "id,name,cylinders,displacement,horsepower,weight,acceleration,year,origin\n"
    "a,chevy ltd,8,307,130,3504,12,75,1\n"
    "b,vw rabbit,4,97,,-1,14.5,80,\n"
    "c,toyota corolla,4,97,75,2155,16.4,76,3\n"
)


@pytest.fixture(scope="module")
def guarded(trained, tracking_uri, tmp_path_factory) -> Iterator[str]:
    _, result = trained
    env = {**subprocess_env(tracking_uri), "CARNN_API_TOKEN": TOKEN}
    log = tmp_path_factory.mktemp("page-guarded") / "serve.log"
    with carnn_server(result.model_uri, log, env) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 900, "height": 900})
    page = context.new_page()
    page.requested = []  # every URL the page asks for: its own server's only
    page.on("request", lambda request: page.requested.append(request.url))
    yield page
    context.close()


def open_page(page: Page, url: str) -> None:
    page.goto(f"{url}/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def fill_car(page: Page, record: dict) -> None:
    """Each field found by its label, as a screen reader would name it."""
    for name, value in record.items():
        control = page.get_by_label(LABELS[name])
        if name == "origin":
            control.select_option(label={1: "USA", 2: "Europe", 3: "Japan"}[value])
        else:
            control.fill(str(value))


def only_own_requests(page: Page, url: str) -> None:
    foreign = [u for u in page.requested if not u.startswith((f"{url}/", "blob:", "data:"))]
    assert not foreign, foreign


def test_the_form_answers_mpg_and_litres(page, carnn_served):
    open_page(page, carnn_served)
    fill_car(page, SEED_RECORD)
    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#mpg")).to_have_text(re.compile(r"^\d+\.\d$"))
    mpg, litres = float(page.locator("#mpg").inner_text()), page.locator("#litres").inner_text()
    api = requests.post(
        f"{carnn_served}/invocations", json={"dataframe_records": [SEED_RECORD]}, timeout=30
    ).json()["predictions"][0]["mpg"]
    assert mpg == pytest.approx(api, abs=0.051)
    assert 10 < mpg < 30  # a 1975 V8 of 3,500 pounds
    assert float(litres) == pytest.approx(235.214583 / api, abs=0.051)
    low, high = (float(page.locator(f"#mpg-{end}").inner_text()) for end in ("low", "high"))
    assert low < mpg < high  # the 90% interval beside the MPG
    if target := os.environ.get("CARNN_SCREENSHOT"):
        path = Path(target) if Path(target).is_absolute() else ROOT / target
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
    only_own_requests(page, carnn_served)


def test_a_negative_weight_is_shown_next_to_the_weight_field(page, carnn_served):
    open_page(page, carnn_served)
    fill_car(page, {**SEED_RECORD, "weight": -1})
    page.get_by_role("button", name="Predict").click()
    error = page.locator("#weight-error")
    expect(error).to_have_text("Has -1: expected pounds, from 200 to 20000.")
    weight = page.get_by_label(LABELS["weight"])
    expect(weight).to_have_attribute("aria-invalid", "true")
    expect(weight).to_be_focused()
    assert "weight-error" in weight.get_attribute("aria-describedby")
    for other in ("cylinders", "displacement", "year"):
        expect(page.locator(f"#{other}-error")).to_be_empty()
    expect(page.locator("#answer")).to_be_hidden()
    fill_car(page, {"weight": 3504})  # corrected: the error goes, the answer comes
    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#mpg")).to_have_text(re.compile(r"^\d+\.\d$"))
    expect(error).to_be_empty()


def test_a_csv_round_trip_keeps_every_row_and_names_the_bad_field(page, carnn_served, tmp_path):
    upload = tmp_path / "cars.csv"
    upload.write_text(CSV_TEXT)
    open_page(page, carnn_served)
    page.get_by_label("CSV file of cars").set_input_files(str(upload))
    page.get_by_role("button", name="Score the CSV").click()
    expect(page.locator("#csv-summary")).to_have_text(
        "3 rows scored: 2 with an MPG, 1 failed validation (see their error column)."
    )
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the scored CSV").click()
    assert download.value.suggested_filename == "cars-mpg.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    given = list(csv.DictReader(io.StringIO(CSV_TEXT)))
    assert [{k: r[k] for k in given[0]} for r in rows] == given  # same rows, same order
    assert [r["mpg"] == "" for r in rows] == [False, True, False]
    assert rows[1]["error"].startswith("weight: ")
    assert "expected pounds, from 200 to 20000" in rows[1]["error"]
    assert rows[0]["error"] == rows[2]["error"] == ""
    assert 10 < float(rows[0]["mpg"]) < float(rows[2]["mpg"]) < 50
    only_own_requests(page, carnn_served)


def test_with_a_token_the_page_asks_for_it_and_does_not_bypass_it(page, guarded, tmp_path):
    open_page(page, guarded)
    assert TOKEN not in page.content()
    fill_car(page, SEED_RECORD)
    page.get_by_role("button", name="Predict").click()
    token_error = page.locator("#token-error")
    expect(token_error).to_have_text("this endpoint needs Authorization: Bearer <token>")
    expect(page.locator("#answer")).to_be_hidden()
    upload = tmp_path / "cars.csv"
    upload.write_text(CSV_TEXT)
    page.get_by_label("CSV file of cars").set_input_files(str(upload))
    page.get_by_role("button", name="Score the CSV").click()
    expect(token_error).to_have_text("this endpoint needs Authorization: Bearer <token>")
    expect(page.get_by_role("link", name="Download the scored CSV")).to_be_hidden()
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#mpg")).to_have_text(re.compile(r"^\d+\.\d$"))
    expect(token_error).to_be_empty()


def test_the_form_is_generated_from_the_field_table(carnn_served):
    response = requests.get(f"{carnn_served}/", timeout=10)
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    html = response.text
    for f in FIELDS:
        assert f'<label for="{f.name}">{f.label}' in html
        if f.numeric and f.name != "origin":
            assert f'min="{f.low:g}" max="{f.high:g}"' in html
    assert '<option value="3">Japan</option>' in html
    assert '<option value="chevrolet"></option>' in html  # known makers suggested
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing from elsewhere
    for asset, media in (("page.css", "text/css"), ("page.js", "text/javascript")):
        got = requests.get(f"{carnn_served}/static/{asset}", timeout=10)
        assert got.status_code == 200
        assert got.headers["content-type"].startswith(media)
        assert "https://" not in got.text
    for other in ("app.py", "..%2Fapp.py", "page.css.bak"):
        assert requests.get(f"{carnn_served}/static/{other}", timeout=10).status_code == 404


def post_csv(url: str, text: str | bytes, **headers: str) -> requests.Response:
    return requests.post(
        f"{url}/score.csv", data=text, headers={"Content-Type": "text/csv", **headers}, timeout=60
    )


def test_score_csv_over_http(carnn_served, guarded):
    answer = post_csv(carnn_served, ("\ufeff" + CSV_TEXT.replace("id,", "mpg,")).encode())
    assert answer.status_code == 200, answer.text
    assert (answer.headers["X-Carnn-Rows"], answer.headers["X-Carnn-Failed"]) == ("3", "1")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["mpg_given"] for r in rows] == ["a", "b", "c"]  # an input mpg column is kept
    assert list(rows[0])[-2:] == ["mpg", "error"]
    missing = post_csv(carnn_served, "cylinders,weight\n4,2000\n")
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] in {"displacement", "acceleration", "year"}
    assert post_csv(carnn_served, "x\n").status_code == 400  # no rows
    wrong = requests.post(f"{carnn_served}/score.csv", json={"a": 1}, timeout=10)
    assert wrong.status_code == 415
    assert post_csv(guarded, CSV_TEXT).status_code == 401
    assert post_csv(guarded, CSV_TEXT, Authorization=f"Bearer {TOKEN}").status_code == 200

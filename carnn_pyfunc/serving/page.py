"""The web page at ``/``: a form generated from the field table, and a CSV round trip.

One input per field of :data:`carnn_pyfunc.contract.FIELDS` (its label, unit, limits and help;
the origin as a choice of USA / Europe / Japan; the car name as free text with the model's known
makers suggested), a Predict button and the answer in MPG and litres per 100 km. The page's
script (``static/page.js``, plain JavaScript) posts to /invocations and /score.csv like any
client, so a bad value shows the API's own 4xx error next to its field. The assets are local
files of the package (no CDN, nothing fetched at run time). With a token set, the page asks for
it and sends it as the Authorization header: it never holds the token itself.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from carnn_pyfunc.contract import FIELDS, Field
from carnn_pyfunc.contract.fields import ORIGIN_LABELS
from carnn_pyfunc.serving.errors import ApiError

STATIC_DIR = Path(__file__).parent / "static"
_MEDIA_TYPES = {"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8"}
# The page's assets (package data), read once: name -> (bytes, media type). Nothing else is served.
ASSETS = {name: ((STATIC_DIR / name).read_bytes(), media) for name, media in _MEDIA_TYPES.items()}
# Everything the page loads or calls is this origin's own.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
LITRES_PER_100KM_TIMES_MPG = 235.214583  # 100 km / (mpg * 1.609344 km/mi / 3.785411784 l/gal)


async def static_file(request: Request) -> Response:
    """GET /static/{name}: one of the page's own assets, or a 404."""
    name = request.path_params["name"]
    if name not in ASSETS:
        raise ApiError(404, "NOT_FOUND", f"no static file {name[:60]!r}")
    content, media_type = ASSETS[name]
    headers = {**HEADERS, "Cache-Control": "no-cache"}
    return Response(content, media_type=media_type, headers=headers)


def render(info: dict[str, Any], *, makers: tuple[str, ...], auth: bool) -> str:
    """The whole page (``info``: the served model's description; ``auth``: ask for the token)."""
    e = html.escape
    model = e(_describe(info))
    fields = "\n".join(_field(f) for f in FIELDS)
    options = "".join(f'<option value="{e(m)}"></option>' for m in makers)
    required = ", ".join(f"<code>{f.name}</code>" for f in FIELDS if f.required)
    optional = ", ".join(f"<code>{f.name}</code>" for f in FIELDS if not f.required)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>carnn: a car's fuel economy</title>
<link rel="stylesheet" href="/static/page.css">
<script src="/static/page.js" defer></script>
</head>
<body data-litres-factor="{LITRES_PER_100KM_TIMES_MPG}">
<header>
<h1>How far does a car go on a gallon?</h1>
<p class="model">Model: {model}. Programs: <a href="/docs">the API</a>.</p>
</header>
<main>
<noscript><p class="error">This page needs JavaScript turned on (a small script of its own,
no framework). Programs can use the API directly: <a href="/docs">/docs</a>.</p></noscript>
{_token_section() if auth else ""}
<section aria-labelledby="one-car">
<h2 id="one-car">One car</h2>
<form id="predict-form" novalidate>
{fields}
<datalist id="makers">{options}</datalist>
<p id="predict-error" class="error" role="alert"></p>
<button type="submit">Predict</button>
</form>
<div id="answer" class="answer" role="status" aria-live="polite" hidden>
<p><output id="mpg"></output> <abbr title="miles per US gallon">MPG</abbr>,
that is <output id="litres"></output> litres per 100 km.</p>
<p>90% prediction interval: <output id="mpg-low"></output> to <output id="mpg-high"></output>
MPG (nine cars in ten like this one fall inside it).</p>
</div>
</section>
<section aria-labelledby="many-cars">
<h2 id="many-cars">Many cars: CSV in, CSV out</h2>
<form id="csv-form" novalidate>
<div class="field">
<label for="csv-file">CSV file of cars</label>
<input id="csv-file" name="csv-file" type="file" accept=".csv,text/csv"
 aria-describedby="csv-file-help csv-file-error">
<p id="csv-file-help" class="help">A header row of field names, one car a row. Required
columns: {required}; optional: {optional}. You get the same rows back, in the same order, with
an <code>mpg</code> column and an <code>error</code> column that names the field of each row
that failed (its <code>mpg</code> left empty).</p>
<p id="csv-file-error" class="error"></p>
</div>
<button type="submit">Score the CSV</button>
</form>
<div id="csv-result" role="status" aria-live="polite">
<p id="csv-summary"></p>
<p><a id="csv-download" href="#" download="cars-mpg.csv" hidden>Download the scored CSV</a></p>
</div>
</section>
</main>
</body>
</html>
"""


def _describe(info: dict[str, Any]) -> str:
    if info.get("name"):
        alias = f" ({info['alias']})" if info.get("alias") else ""
        return f"{info['name']} version {info.get('version')}{alias}"
    return str(info.get("model_uri", "unknown"))


def _token_section() -> str:
    return """<section aria-labelledby="access">
<h2 id="access">Access</h2>
<div class="field">
<label for="token">API token <span class="need">(required)</span></label>
<input id="token" name="token" type="password" autocomplete="off" spellcheck="false"
 aria-required="true" aria-describedby="token-help token-error">
<p id="token-help" class="help">This service needs its bearer token. The page sends it with
each request (as the Authorization header) and keeps it nowhere else.</p>
<p id="token-error" class="error"></p>
</div>
</section>"""


def _field(f: Field) -> str:
    """One field: label (with unit and whether it is required), input, help, error slot."""
    shown = f.unit and f.unit.lower() not in f.label.lower()  # not "Cylinders (cylinders)"
    unit = f' <span class="unit">({html.escape(f.unit)})</span>' if shown else ""
    need = "required" if f.required else "optional"
    attributes = (
        f'id="{f.name}" name="{f.name}" data-field="{f.name}" data-kind="{f.kind}" '
        f'aria-describedby="{f.name}-help {f.name}-error"'
    )
    if f.required:
        attributes += ' required aria-required="true"'
    return f"""<div class="field" id="{f.name}-field">
<label for="{f.name}">{html.escape(f.label)}{unit} <span class="need">({need})</span></label>
{_control(f, attributes)}
<p id="{f.name}-help" class="help">{_help(f.help)}</p>
<p id="{f.name}-error" class="error"></p>
</div>"""


def _control(f: Field, attributes: str) -> str:
    example = html.escape(f"{f.example:g}" if f.numeric else str(f.example))
    if f.name == "origin":  # a code with a label each: a choice
        choices = "".join(
            f'<option value="{code}">{html.escape(label)}</option>'
            for code, label in ORIGIN_LABELS.items()
        )
        return f'<select {attributes}><option value="">from the maker</option>{choices}</select>'
    if not f.numeric:
        return (
            f'<input {attributes} type="text" list="makers" maxlength="200" autocomplete="off" '
            f'placeholder="e.g. {example}">'
        )
    step = "1" if f.kind == "whole" else "any"
    return (
        f'<input {attributes} type="number" step="{step}" min="{f.low:g}" max="{f.high:g}" '
        f'inputmode="decimal" data-expected="{html.escape(f.expected)}" '
        f'placeholder="e.g. {example}">'
    )


def _help(text: str) -> str:
    """The field table's help text, `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))

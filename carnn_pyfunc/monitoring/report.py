"""The monitor's HTML report: one self-contained page (inline SVG, no script, nothing fetched)
with the verdict, the drift table, reference vs current histograms per field, and live MAE and
coverage over the window.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from carnn_pyfunc.contract.fields import ORIGINS

WIDTH, HEIGHT, PAD = 360, 160, 32
ORIGIN_NAMES = {f"{code:.1f}": name for code, name in ORIGINS.items()}
REFERENCE, CURRENT = "#8c8c8c", "#d9480f"
_STYLE = """body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}.drift{background:#ffe8e0}
.alert{color:#b00;font-weight:600}.well{color:#070;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:18px}figure{margin:0}figcaption{font-weight:600}"""


def _svg(body: str, width: int = WIDTH, height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">{body}</svg>'
    )


def _legend() -> str:
    return (
        f'<rect x="{WIDTH - 150}" y="4" width="10" height="10" fill="{REFERENCE}"/>'
        f'<text x="{WIDTH - 136}" y="13" font-size="11">reference</text>'
        f'<rect x="{WIDTH - 76}" y="4" width="10" height="10" fill="{CURRENT}"/>'
        f'<text x="{WIDTH - 62}" y="13" font-size="11">current</text>'
    )


def histogram_svg(reference: np.ndarray, current: np.ndarray, bins: int = 24) -> str:
    """Reference and current shares per bin, as two overlaid bar series."""
    both = np.concatenate([reference, current])
    if both.size == 0:
        return _svg('<text x="10" y="20">no values</text>')
    low, high = float(both.min()), float(both.max())
    edges = np.linspace(low, high if high > low else low + 1, bins + 1)
    shares = [np.histogram(v, edges)[0] / max(v.size, 1) for v in (reference, current)]
    top = max(float(s.max()) for s in shares) or 1.0
    step = (WIDTH - 2 * PAD) / bins
    bars = []
    for series, colour, offset in ((shares[0], REFERENCE, 0.0), (shares[1], CURRENT, 0.45)):
        for i, share in enumerate(series):
            h = share / top * (HEIGHT - 2 * PAD)
            x = PAD + (i + offset) * step
            bars.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{step * 0.5:.1f}" '
                f'height="{h:.1f}" fill="{colour}"/>'
            )
    axis = (
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        f'stroke="#444"/><text x="{PAD}" y="{HEIGHT - 8}" font-size="11">{low:.4g}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="11" text-anchor="end">'
        f"{high:.4g}</text>"
    )
    return _svg("".join(bars) + axis + _legend())


def shares_svg(reference: dict[str, float], current: pd.Series, labels: dict | None = None) -> str:
    """Reference and current share of each category, as paired bars (``labels``: a category's
    shown name)."""
    labels = labels or {}
    counts = current.value_counts(normalize=True)
    keys = sorted(set(reference) | set(counts.index), key=lambda k: -reference.get(k, 0.0))
    if not keys:
        return _svg('<text x="10" y="20">no values</text>')
    top = max([*reference.values(), *counts.tolist(), 1e-9])
    step = (WIDTH - 2 * PAD) / len(keys)
    parts = []
    for i, key in enumerate(keys):
        for share, colour, offset in (
            (reference.get(key, 0.0), REFERENCE, 0.05),
            (float(counts.get(key, 0.0)), CURRENT, 0.5),
        ):
            h = share / top * (HEIGHT - 2 * PAD - 10)
            parts.append(
                f'<rect x="{PAD + (i + offset) * step:.1f}" y="{HEIGHT - PAD - h:.1f}" '
                f'width="{step * 0.42:.1f}" height="{h:.1f}" fill="{colour}"/>'
            )
        label = html.escape(labels.get(key, key.removesuffix(".0")))[:10]
        x = PAD + (i + 0.5) * step
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - PAD + 10}" font-size="9" text-anchor="end" '
            f'transform="rotate(-35 {x:.1f} {HEIGHT - PAD + 10})">{label}</text>'
        )
    return _svg("".join(parts) + _legend())


def line_svg(points: pd.DataFrame, column: str, reference: float | None, fmt: str) -> str:
    """``column`` over ``start`` as a line, with the model's test figure as a dashed line."""
    data = points.dropna(subset=[column])
    if data.empty:
        return _svg('<text x="10" y="20">no labelled rows</text>')
    values = data[column].to_numpy(dtype=np.float64)
    known = [v for v in [*values, reference] if v is not None and not math.isnan(v)]
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    n = len(values)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = PAD + (i / max(n - 1, 1)) * (WIDTH - 2 * PAD)
        return x, HEIGHT - PAD - (v - low) / span * (HEIGHT - 2 * PAD)

    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(values)))
    parts = [f'<polyline points="{path}" fill="none" stroke="{CURRENT}" stroke-width="2"/>']
    if reference is not None and not math.isnan(reference):
        _, y = xy(0, reference)
        parts.append(
            f'<line x1="{PAD}" y1="{y:.1f}" x2="{WIDTH - PAD}" y2="{y:.1f}" stroke="{REFERENCE}" '
            f'stroke-dasharray="4 3"/><text x="{WIDTH - PAD}" y="{y - 3:.1f}" font-size="10" '
            f'text-anchor="end">test {format(reference, fmt)}</text>'
        )
    first, last = data["start"].iloc[0], data["start"].iloc[-1]
    parts.append(
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10">{first:%m-%d %H:%M}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="10" text-anchor="end">'
        f'{last:%m-%d %H:%M}</text><text x="4" y="12" font-size="10">'
        f'{format(high, fmt)}</text><text x="4" y="{HEIGHT - PAD}" font-size="10">'
        f"{format(low, fmt)}</text>"
    )
    return _svg("".join(parts))


def _figure(title: str, svg: str) -> str:
    return f"<figure><figcaption>{html.escape(title)}</figcaption>{svg}</figure>"


def _table_html(table: pd.DataFrame) -> str:
    columns = ["kind", "rows", "p_adjusted", "shift", "psi", "js", "outside", "unseen", "missing"]
    head = "".join(f"<th>{c}</th>" for c in ["field", *columns, "drifting"])
    body = []
    for name, row in table.iterrows():
        cells = [f"<td>{html.escape(str(name))}</td>"]
        for c in columns:
            v = row[c]
            text = v if isinstance(v, str) else ("" if pd.isna(v) else f"{v:.3g}")
            cells.append(f"<td>{text}</td>")
        cells.append(f"<td>{'yes' if row['drifting'] else ''}</td>")
        body.append(f'<tr class="{"drift" if row["drifting"] else ""}">{"".join(cells)}</tr>')
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render(outcome, values: dict, profile: dict) -> str:
    """The page for a monitored window (``outcome``: :class:`.monitor.Outcome`; ``values``:
    :func:`.drift.window_values` of its rows)."""
    verdict = (
        '<p class="alert">ALERT</p><ul>'
        + "".join(f"<li>{html.escape(r)}</li>" for r in outcome.reasons)
        + "</ul>"
        if outcome.reasons
        else '<p class="well">all is well</p>'
    )
    figures = []
    for name in outcome.table.index:
        if name in profile["categories"]:
            labels = ORIGIN_NAMES if name == "origin" else None
            svg = shares_svg(profile["categories"][name], values[f"{name}@"], labels)
        else:
            current = values[name]
            svg = histogram_svg(
                np.asarray(profile["numbers"][name]["sample"]), current[~np.isnan(current)]
            )
        figures.append(_figure(name, svg))
    live, test = outcome.live, profile.get("test", {})
    accuracy = (
        f"<p>{int(live['labels'])} labelled rows: MAE {live['mae']:.2f} mpg (95% CI "
        f"{live['mae_low']:.2f}-{live['mae_high']:.2f}; test {test.get('test_mae', math.nan):.2f})"
        f", RMSE {live['rmse']:.2f}, coverage {live['coverage']:.1%} (95% CI "
        f"{live['coverage_low']:.1%}-{live['coverage_high']:.1%}; test "
        f"{test.get('test_interval_coverage', math.nan):.1%}), width {live['width']:.2f} mpg</p>"
    )
    over = outcome.over_time
    trends = [
        _figure("live MAE (mpg)", line_svg(over, "mae", test.get("test_mae"), ".2f")),
        _figure(
            "interval coverage",
            line_svg(over, "coverage", test.get("test_interval_coverage"), ".0%"),
        ),
    ]
    title = html.escape(f"carnn monitor: {outcome.describe()}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{title}</h1>{verdict}"
        f"<p>{outcome.rows} rows ({outcome.failed} failed validation)</p>"
        f"<h2>Drift against the training profile</h2>{_table_html(outcome.table)}"
        f"<div class='grid'>{''.join(figures)}</div>"
        f"<h2>Live accuracy</h2>{accuracy}<div class='grid'>{''.join(trends)}</div>"
        "</body></html>\n"
    )

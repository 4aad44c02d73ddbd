"""Drift of a window's inputs against the reference profile: pure functions on arrays.

Numbers: the two-sample Kolmogorov-Smirnov test against the training values themselves
(``scipy.stats.ks_2samp``), the Wasserstein distance in reference standard deviations
(``scipy.stats.wasserstein_distance``), the population stability index on the reference's
decile bins, and the share of values outside the training range. Categories: the chi-square
test against the reference shares (``scipy.stats.chisquare``; categories expected fewer than 5
times, and categories training never saw, are pooled into one bin) and the Jensen-Shannon
distance (``scipy.spatial.distance.jensenshannon``, base 2: 0 the same mix, 1 nothing in common).

The p-values of all fields are corrected together: Holm's step-down method by default (it
controls the chance of calling ANY field drifting when none is, the question an alert asks,
whatever the dependence between fields), Benjamini-Hochberg on request (it controls the share
of false calls among the fields called: more power, weaker promise).

A p-value alone is not a drift call: with thousands of rows the tests find differences far too
small to matter (traffic that repeats the same cars, as any real traffic does, is not an
independent sample either). A field drifts when its corrected p-value is below ``alpha`` AND
its shift is at least ``min_shift`` reference standard deviations (numbers) or its
Jensen-Shannon distance at least ``min_js`` (categories): significant and large enough.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from carnn_pyfunc.contract.names import MAKER_ALIASES
from carnn_pyfunc.monitoring.profile import makers

PSI_BINS = 10
PSI_FLOOR = 1e-4  # a bin's share below this counts as this (an empty bin: large, not infinite)
MIN_EXPECTED = 5.0  # chi-square: categories expected fewer times are pooled (Cochran's rule)
UNSEEN_PSEUDO_ROWS = 0.5  # an unseen category is expected as half a reference row


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error rate), in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return p
    order = np.argsort(p, kind="stable")
    m = p.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def correct(p_values: Sequence[float], method: str = "holm") -> np.ndarray:
    """Adjusted p-values by ``method`` (``holm`` or ``bh``); NaN (a field not tested) stays NaN
    and does not count as a test."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    if not tested.any():
        return out
    if method == "holm":
        out[tested] = holm(p[tested])
    elif method == "bh":
        out[tested] = stats.false_discovery_control(p[tested], method="bh")
    else:
        raise ValueError(f"correction {method!r} is not one of holm, bh")
    return out


def decile_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (repeated edges merged: a field with few
    values, such as cylinders, gets one bin per value)."""
    levels = np.linspace(0, 1, bins + 1)[1:-1]
    return np.unique(np.quantile(reference, levels, method="inverted_cdf"))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin (-inf, e1], (e1, e2], ..., (ek, inf)."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
    return counts / max(values.size, 1)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``current`` on the reference's decile bins."""
    edges = decile_edges(reference, bins)
    ref = np.maximum(bin_shares(reference, edges), PSI_FLOOR)
    cur = np.maximum(bin_shares(current, edges), PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def outside_share(current: np.ndarray, low: float, high: float) -> float:
    """Share of ``current`` outside the training range [low, high]."""
    if current.size == 0:
        return float("nan")
    return float(np.mean((current < low) | (current > high)))


def number_drift(reference: np.ndarray, current: np.ndarray, low: float, high: float) -> dict:
    """One number field: KS (statistic, p), Wasserstein distance in reference standard
    deviations, PSI and the share outside [low, high]. ``current`` holds the present values
    only; fewer than 2 of them: no test (NaN)."""
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    result = {"rows": int(current.size), "outside": outside_share(current, low, high)}
    if current.size < 2:
        nan = float("nan")
        return result | {"statistic": nan, "p": nan, "shift": nan, "psi": nan}
    ks = stats.ks_2samp(reference, current)
    scale = float(np.std(reference, ddof=1)) or 1.0  # a constant reference: distance in units
    return result | {
        "statistic": float(ks.statistic),
        "p": float(ks.pvalue),
        "shift": float(stats.wasserstein_distance(reference, current)) / scale,
        "psi": psi(reference, current),
    }


def category_drift(
    reference: dict[str, float], current: Sequence[str], reference_rows: int
) -> dict:
    """One category field: chi-square of the counts in ``current`` against the reference
    shares, the Jensen-Shannon distance and the share of values training never saw."""
    counts = pd.Series(list(current), dtype=object).value_counts()
    n = int(counts.sum())
    keys = sorted(set(reference) | set(counts.index))
    observed = np.array([counts.get(k, 0) for k in keys], dtype=np.float64)
    shares = np.array([reference.get(k, 0.0) for k in keys], dtype=np.float64)
    unseen = shares == 0
    result = {"rows": n, "unseen": float(observed[unseen].sum() / n) if n else float("nan")}
    if n < 2:
        return result | {"statistic": float("nan"), "p": float("nan"), "js": float("nan")}
    with np.errstate(invalid="ignore"):  # the same mix: a divergence of -1e-17 has no root
        js = float(jensenshannon(observed / n, shares / shares.sum(), base=2))
    js = 0.0 if np.isnan(js) else js
    expected = np.where(unseen, UNSEEN_PSEUDO_ROWS / max(reference_rows, 1), shares)
    expected = expected / expected.sum() * n
    observed, expected = pool_rare(observed, expected)
    if observed.size < 2:  # one bin left: nothing to compare
        return result | {"statistic": 0.0, "p": 1.0, "js": js}
    chi = stats.chisquare(observed, expected)
    return result | {"statistic": float(chi.statistic), "p": float(chi.pvalue), "js": js}


def pool_rare(observed: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bins expected fewer than MIN_EXPECTED times pooled into one (kept apart only if that
    pool reaches MIN_EXPECTED; else it joins the smallest common bin), so that chi-square's
    approximation holds on small windows and an unseen category does not divide by zero."""
    rare = expected < MIN_EXPECTED
    if not rare.any():
        return observed, expected
    kept_o, kept_e = list(observed[~rare]), list(expected[~rare])
    pool_o, pool_e = float(observed[rare].sum()), float(expected[rare].sum())
    if pool_e >= MIN_EXPECTED or not kept_e:
        kept_o.append(pool_o)
        kept_e.append(pool_e)
    else:
        smallest = int(np.argmin(kept_e))
        kept_o[smallest] += pool_o
        kept_e[smallest] += pool_e
    return np.asarray(kept_o), np.asarray(kept_e)


def drifting(
    table: pd.DataFrame, *, alpha: float = 0.05, min_shift: float = 0.25, min_js: float = 0.3
) -> pd.Series:
    """Which fields of a drift table drift: corrected p below ``alpha`` and an effect of at
    least ``min_shift`` reference standard deviations (numbers) or ``min_js`` (categories)."""
    effect = np.where(table["kind"] == "number", table["shift"] >= min_shift, table["js"] >= min_js)
    return pd.Series((table["p_adjusted"] < alpha) & effect, index=table.index)


def window_values(frame: pd.DataFrame, profile: dict) -> dict[str, np.ndarray | pd.Series]:
    """Each profiled field of a window's rows as the profile holds it: numbers as float arrays
    (model years folded to two digits, as the contract reads them), categories as strings
    (``origin`` and ``cylinders`` as ``"1.0"``, the maker read from the name)."""
    values: dict[str, np.ndarray | pd.Series] = {}
    for name in profile["numbers"]:
        column = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        if name == "year":
            column = np.where(column >= 1900, column - 1900, column)
        values[name] = column
    for name in profile["categories"]:
        if name == "maker":
            known = tuple(profile["categories"]["maker"])
            values["maker@"] = makers(frame["name"], known, MAKER_ALIASES)
        else:
            numbers = pd.Series(values.get(name, frame[name]), dtype="float64")
            values[f"{name}@"] = numbers.dropna().astype(str)
    return values


def drift_table(frame: pd.DataFrame, profile: dict, correction: str = "holm") -> pd.DataFrame:
    """One row per field of the profile: the tests, the distances, the shares outside the
    range, unseen and missing; p-values corrected across the fields (``p_adjusted``). A field
    that is both a number and a category (cylinders) is tested once, as a category."""
    values = window_values(frame, profile)
    rows = []
    categories = profile["categories"]
    for name, ref in profile["numbers"].items():
        current = values[name]
        present = current[~np.isnan(current)]
        row = number_drift(np.asarray(ref["sample"]), present, ref["min"], ref["max"])
        row |= {"field": name, "kind": "number", "js": np.nan, "unseen": np.nan}
        row |= {"missing": float(np.isnan(current).mean()) if current.size else np.nan}
        row["missing_reference"] = ref["missing"]
        if name in categories:  # tested as a category below; its distances kept
            row.update(category_drift(categories[name], values[f"{name}@"], profile["rows"]))
            row["kind"] = "category"
        rows.append(row)
    for name, ref in categories.items():
        if name not in profile["numbers"]:
            row = category_drift(ref, values[f"{name}@"], profile["rows"])
            nan = np.nan
            row |= {"field": name, "kind": "category", "shift": nan, "psi": nan, "outside": nan}
            source = frame["name" if name == "maker" else name]
            row |= {"missing": float(source.isna().mean()) if len(source) else nan}
            row["missing_reference"] = 0.0
            rows.append(row)
    table = pd.DataFrame(rows).set_index("field")
    table["p_adjusted"] = correct(table["p"].to_numpy(), correction)
    return table

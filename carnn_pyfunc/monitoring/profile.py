"""The reference profile: the training distribution a served model's inputs are compared with.

Logged with the model (artifact ``profile.json``) and with its run. For each number field, the
training values themselves (a few hundred cars: exact two-sample tests need no binning), their
share missing, range and quantiles; for each category (origin, cylinders, the maker read from
the name), the share of each value; and the model's figures on its held-out test cars (MAE,
RMSE, 90% interval coverage and width), which live accuracy is held against.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from carnn_pyfunc.contract import OTHER_MAKER, maker_of
from carnn_pyfunc.contract.fields import FIELDS

PROFILE_FORMAT = 1
NUMBER_FIELDS = tuple(f.name for f in FIELDS if f.numeric and f.name != "origin")
CATEGORY_FIELDS = ("origin", "cylinders", "maker")
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


def makers(names: pd.Series, known: tuple[str, ...], aliases: dict[str, str]) -> pd.Series:
    """The maker of each car name as the contract encodes it (``other`` when unknown)."""
    known_set = set(known)
    return names.map(
        lambda n: m if (m := maker_of(n, aliases) if isinstance(n, str) else None) in known_set
        else OTHER_MAKER
    )  # fmt: skip


def build_profile(train: pd.DataFrame, contract, test_figures: dict[str, float]) -> dict:
    """The profile of the training rows ``train`` (raw fields) for a model with ``contract``."""
    numbers = {}
    for name in NUMBER_FIELDS:
        values = pd.to_numeric(train[name], errors="coerce").to_numpy(dtype=np.float64)
        present = values[~np.isnan(values)]
        numbers[name] = {
            "sample": present.tolist(),
            "missing": float(np.isnan(values).mean()),
            "min": float(present.min()),
            "max": float(present.max()),
            "mean": float(present.mean()),
            "std": float(present.std(ddof=1)),
            "quantiles": {str(q): float(np.quantile(present, q)) for q in QUANTILES},
        }
    maker = makers(train["name"], contract.makers, contract.maker_aliases)
    columns = {"origin": train["origin"], "cylinders": train["cylinders"], "maker": maker}
    categories = {}
    for name, column in columns.items():
        shares = column.astype(str).value_counts(normalize=True, dropna=False).sort_index()
        categories[name] = {str(k): float(v) for k, v in shares.items()}
    return {
        "format": PROFILE_FORMAT,
        "rows": len(train),
        "numbers": numbers,
        "categories": categories,
        "test": dict(test_figures),
    }


def save_profile(profile: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(profile, indent=1) + "\n")


def load_profile(path: str | Path) -> dict:
    profile = json.loads(Path(path).read_text())
    if profile.get("format") != PROFILE_FORMAT:
        raise ValueError(
            f"profile format {profile.get('format')!r} is not {PROFILE_FORMAT}: this carnn reads "
            f"profile format {PROFILE_FORMAT}"
        )
    return profile

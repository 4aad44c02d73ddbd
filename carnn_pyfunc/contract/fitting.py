"""Fit the feature contract on training rows, and save or load its fitted state.

The state is one file, ``contract.json``: vocabularies, imputation values, the fitted scaler's
numbers, the layout and library versions. Loading it needs neither scikit-learn nor a pickle, so
a serving environment carries neither.

:func:`load_contract` reads every contract format carnn wrote that this encoder can apply
faithfully: 4 (this one) and 2 and 3 (the same layout, the scaler kept in ``scaler.joblib``,
read by :mod:`.legacy`; format 2's own field limits are not used: the field table validates).
Format 1's network takes another layout; it, and any format newer than this code, is refused
with one line naming the release that reads it (:mod:`carnn_pyfunc.formats`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from carnn_pyfunc.contract.encoder import (
    LOG_FIELDS,
    LOGGED,
    SCALED_FEATURES,
    YEAR,
    FeatureContract,
    impute_and_normalise,
)
from carnn_pyfunc.contract.fields import (
    INPUT_FIELDS,
    NUMERIC_FIELDS,
    OPTIONAL_FIELDS,
    ORIGINS,
    REQUIRED_FIELDS,
)
from carnn_pyfunc.contract.names import OTHER_MAKER, maker_of
from carnn_pyfunc.formats import CONTRACT_FORMAT, UnservableFormat, contract_refusal

SCALER_FORMATS = (2, 3)  # contract formats whose scaler is a joblib pickle beside contract.json


def fit_contract(train: pd.DataFrame, *, min_maker_count: int) -> FeatureContract:
    """Fit the contract on the training split only.

    Makers with fewer than ``min_maker_count`` training rows are grouped as ``other``;
    missing horsepower is imputed with the training median; a MinMaxScaler is fitted on the
    numeric fields after imputation and the logarithms of LOG_FIELDS; the training rows' model
    years are the one-hot years.
    """
    from sklearn.preprocessing import MinMaxScaler  # training only

    if min_maker_count < 1:
        raise ValueError("min_maker_count must be at least 1")
    makers = train["name"].map(maker_of)
    counts = makers.value_counts()
    vocabulary = sorted(m for m, c in counts.items() if c >= min_maker_count and m != OTHER_MAKER)
    maker_origin = {m: int(train.loc[makers == m, "origin"].mode().iloc[0]) for m in vocabulary}
    origin_share = train["origin"].value_counts(normalize=True)
    hp_median = float(train["horsepower"].median())
    if math.isnan(hp_median):
        raise ValueError("horsepower: no training row has a value to take the median of")

    numeric = train[list(NUMERIC_FIELDS)].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    impute_and_normalise(numeric, hp_median)
    scaler = MinMaxScaler().fit(np.concatenate([numeric, np.log(numeric[:, LOGGED])], axis=1))
    return FeatureContract(
        horsepower_median=hp_median,
        makers=(*vocabulary, OTHER_MAKER),
        maker_origin=maker_origin,
        origin_frequencies=tuple(float(origin_share.get(code, 0.0)) for code in ORIGINS),
        years=tuple(int(y) for y in np.unique(numeric[:, YEAR])),
        scale=tuple(float(v) for v in scaler.scale_),
        shift=tuple(float(v) for v in scaler.min_),
    )


def contract_json(contract: FeatureContract) -> dict[str, Any]:
    """The whole fitted state as plain JSON, with the layout it implies."""
    state = asdict(contract)
    return {
        "format": CONTRACT_FORMAT,
        "input_fields": list(INPUT_FIELDS),
        "required_fields": list(REQUIRED_FIELDS),
        "optional_fields": list(OPTIONAL_FIELDS),
        "numeric_fields": list(NUMERIC_FIELDS),
        "log_fields": list(LOG_FIELDS),
        "scaled_features": list(SCALED_FEATURES),
        "origins": {str(code): name for code, name in ORIGINS.items()},
        "feature_names": list(contract.feature_names),
        **state,
    }


def save_contract(contract: FeatureContract, path: str | Path) -> None:
    Path(path).write_text(json.dumps(contract_json(contract), indent=2) + "\n")


def contract_format(path: str | Path) -> object:
    """The ``format`` a contract.json says it has."""
    return json.loads(Path(path).read_text()).get("format")


def load_contract(path: str | Path, scaler_path: str | Path | None = None) -> FeatureContract:
    """The fitted contract in ``path`` (and, for formats 2 and 3, the scaler at ``scaler_path``).

    Raises UnservableFormat (one line) for a format this code does not read."""
    state = json.loads(Path(path).read_text())
    number = state.get("format")
    if number == CONTRACT_FORMAT:
        scale, shift = tuple(state["scale"]), tuple(state["shift"])
    elif number in SCALER_FORMATS and scaler_path is not None:
        from carnn_pyfunc.contract.legacy import read_scaler

        scale, shift = read_scaler(scaler_path)
    elif number in SCALER_FORMATS:
        raise ValueError(f"{path}: contract format {number} needs its scaler.joblib as well")
    else:
        raise UnservableFormat(contract_refusal(number, state.get("feature_names")))
    contract = FeatureContract(
        horsepower_median=float(state["horsepower_median"]),
        makers=tuple(state["makers"]),
        maker_origin={k: int(v) for k, v in state["maker_origin"].items()},
        origin_frequencies=tuple(state["origin_frequencies"]),
        years=tuple(state["years"]),
        scale=scale,
        shift=shift,
        maker_aliases=dict(state["maker_aliases"]),
        versions=dict(state["versions"]),
    )
    if list(contract.feature_names) != state["feature_names"]:
        raise ValueError(f"{path}: feature names do not match the contract layout")
    return contract

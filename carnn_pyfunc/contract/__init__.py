"""The feature contract: the field table, validation, encoding and the fitted scaler state.

- ``fields``: THE field table (name, type, required, limits, unit, help); everything that lists
  the input fields is generated from it.
- ``problems``: the error type (field, row, what was expected) and how a value is shown.
- ``columns``: each field at most once; a misspelt field name an error; other columns ignored.
- ``validation``: read a batch's columns (strict types), check every value.
- ``names``: maker and engine flags from the car name, remembered in a bounded table.
- ``rows``: row-by-row validation for batches (an error line per bad row, none fails the rest).
- ``fast``: a few JSON records validated and encoded with Python scalars (the served one-car
  request), bit for bit what the vectorised path computes.
- ``encoder``: :class:`FeatureContract`, the fitted state and ``transform``.
- ``fitting``: fit on the training split; save and load the state (every format it reads).
- ``legacy``: the scaler of contract formats 2 and 3, read from its joblib pickle (restricted).

May import: numpy, pandas (scikit-learn only inside ``fit_contract``: serving needs none; joblib
only for the old formats' scaler), :mod:`carnn_pyfunc.versions` and :mod:`carnn_pyfunc.formats`;
nothing else of carnn (training, serving and the model import this package, never the other
way).
"""

from carnn_pyfunc.contract.encoder import LOG_FIELDS, SCALED_FEATURES, FeatureContract
from carnn_pyfunc.contract.fields import (
    FIELDS,
    INPUT_FIELDS,
    NUMERIC_FIELDS,
    OPTIONAL_FIELDS,
    ORIGINS,
    REQUIRED_FIELDS,
    Field,
)
from carnn_pyfunc.contract.fitting import fit_contract, load_contract, save_contract
from carnn_pyfunc.contract.names import NAME_FLAGS, OTHER_MAKER, maker_of
from carnn_pyfunc.contract.validation import InvalidRecordError, Problem

__all__ = [
    "FIELDS",
    "INPUT_FIELDS",
    "LOG_FIELDS",
    "NAME_FLAGS",
    "NUMERIC_FIELDS",
    "OPTIONAL_FIELDS",
    "ORIGINS",
    "OTHER_MAKER",
    "REQUIRED_FIELDS",
    "SCALED_FEATURES",
    "FeatureContract",
    "Field",
    "InvalidRecordError",
    "Problem",
    "fit_contract",
    "load_contract",
    "maker_of",
    "save_contract",
]

"""Benchmark baseline: a tutorial-grade pyfunc (per-request pandas dummies + ``model.predict``).

Same artifacts and signature as the carnn model; kept only to measure against.
"""

import json

import keras
import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from carnn_pyfunc.contract import NAME_FLAGS

ORIGIN_NAMES = {1: "usa", 2: "europe", 3: "japan"}


class NaiveModel(PythonModel):
    def load_context(self, context):
        self.model = keras.saving.load_model(context.artifacts["network"], compile=False)
        with open(context.artifacts["contract"]) as handle:
            contract = json.load(handle)
        self.columns = contract["feature_names"]
        self.scaled = contract["scaled_features"]
        self.logged = contract["log_fields"]
        self.makers = set(contract["makers"])
        self.aliases = contract["maker_aliases"]
        self.median = contract["horsepower_median"]
        self.scale, self.shift = np.array(contract["scale"]), np.array(contract["shift"])

    def predict(self, context, model_input: pd.DataFrame, params=None):
        df = model_input.copy()
        df["horsepower"] = df["horsepower"].fillna(self.median)
        maker = df["name"].str.lower().str.split().str[0].replace(self.aliases)
        df["maker"] = maker.where(maker.isin(self.makers), "other")
        df["origin"] = df["origin"].map(ORIGIN_NAMES)
        df["model_year"] = df["year"].astype(int)
        for field in self.logged:
            df[f"log_{field}"] = np.log(df[field])
        dummies = pd.get_dummies(
            df[["origin", "maker", "model_year"]].astype({"model_year": str}),
            prefix=["origin", "maker", "year"],
        )
        flags = [
            df["name"].str.lower().str.contains(pattern.pattern).astype(float).rename(flag)
            for flag, pattern in NAME_FLAGS.items()
        ]
        features = pd.concat([df[self.scaled], dummies, *flags], axis=1)
        features = features.reindex(columns=self.columns, fill_value=0)
        features[self.scaled] = features[self.scaled].to_numpy() * self.scale + self.shift
        mpg = self.model.predict(features.to_numpy(dtype=np.float32), verbose=0)[:, 0]
        return pd.DataFrame({"mpg": mpg.astype(np.float64)})


set_model(NaiveModel())

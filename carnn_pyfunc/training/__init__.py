"""Training: one tracked run, cross-validation against baselines, the hyperparameter sweep.

- ``fit``: pure steps (data and config in, a fitted network and contract out); no MLflow.
- ``run``: one tracked run, a thin orchestrator around ``fit`` that logs everything.
- ``extra``: labelled served cars (``--extra-data``) validated, de-duplicated, added to training.
- ``evaluation``: repeated k-fold CV of the network and of baselines on identical folds.
- ``baselines``: the scikit-learn baselines, at their defaults and tuned inside each fold.
- ``sweep``: the Optuna search, each trial a nested run.
- ``plots``: the figures logged with runs.

May import: contract, model, config, data, metrics, versions; never registry, serving or batch.
"""

"""Safe rollout: a candidate version takes a growing share of live traffic and is promoted, or
rolled back, on the evidence of that traffic.

- ``checks``: pure rules: one step's evidence (from the prediction log and the labels) against
  the thresholds: 5xx rate, p99 latency, how often the versions disagree, live MAE.
- ``evidence``: a window of the prediction log and the labels as per-version figures.
- ``driver``: the steps: set the canary's weight (a tag on the registered model that every
  serving worker polls), wait, judge, and at the end promote through the registry's gates, or
  set the weight to 0 and record the reason on the version.

May import: :mod:`carnn_pyfunc.monitoring` (the log's schema), :mod:`carnn_pyfunc.registry`
(promotion), numpy, pandas, pyarrow, MLflow.
"""

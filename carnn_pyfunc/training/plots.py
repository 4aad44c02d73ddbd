"""Figures logged with every run (matplotlib's object API: no pyplot, no global backend)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def training_figures(
    history: dict[str, list[float]], actual: np.ndarray, predicted: np.ndarray
) -> dict[str, Figure]:
    """Learning curves, predicted versus actual, and residuals, keyed by PNG file name."""
    return {
        "learning_curves.png": learning_curves(history),
        "predicted_vs_actual.png": predicted_vs_actual(actual, predicted),
        "residuals.png": residuals(actual, predicted),
    }


def learning_curves(history: dict[str, list[float]]) -> Figure:
    figure = Figure(figsize=(10, 4), layout="constrained")
    labels = ("loss: per row, summed over its members, + L2", "MAE (MPG, members' mean)")
    for axes, metric, label in zip(figure.subplots(1, 2), ("loss", "mae"), labels, strict=True):
        epochs = np.arange(1, len(history[metric]) + 1)
        axes.plot(epochs, history[metric], label="training")
        axes.plot(epochs, history[f"val_{metric}"], label="validation")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.set_yscale("log")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle("Learning curves (ensemble members, each validated on its own rows)")
    return figure


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray) -> Figure:
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    axes.scatter(actual, predicted, s=14, alpha=0.7)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axes.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect prediction")
    axes.set_xlabel("actual MPG")
    axes.set_ylabel("predicted MPG")
    axes.set_title("Test split: predicted vs actual")
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


def residuals(actual: np.ndarray, predicted: np.ndarray) -> Figure:
    error = predicted - actual
    figure = Figure(figsize=(10, 4))
    left, right = figure.subplots(1, 2)
    left.scatter(predicted, error, s=14, alpha=0.7)
    left.axhline(0, color="grey", linestyle="--")
    left.set_xlabel("predicted MPG")
    left.set_ylabel("residual (predicted - actual)")
    left.grid(alpha=0.3)
    right.hist(error, bins=20)
    right.set_xlabel("residual (MPG)")
    right.set_ylabel("cars")
    figure.suptitle("Test split residuals")
    return figure


def cv_comparison(summaries: dict[str, dict[str, float]]) -> Figure:
    """Cross-validated MAE and RMSE per model, with one standard deviation over folds."""
    names = sorted(summaries, key=lambda n: summaries[n]["cv_mae"])
    figure = Figure(figsize=(11, 4), layout="constrained")
    for axes, metric in zip(figure.subplots(1, 2, sharey=True), ("mae", "rmse"), strict=True):
        means = [summaries[n][f"cv_{metric}"] for n in names]
        stds = [summaries[n][f"cv_{metric}_std"] for n in names]
        axes.barh(names, means, xerr=stds, capsize=4, color="#4c78a8")
        for y, (mean, std) in enumerate(zip(means, stds, strict=True)):
            axes.text(0.05, y, f"{mean:.2f} ± {std:.2f}", va="center", color="white")
        axes.set_xlabel(f"cross-validated {metric.upper()} (MPG)")
        axes.grid(alpha=0.3, axis="x")
    axes.invert_yaxis()
    figure.suptitle("Cross-validation on identical folds (lower is better)")
    return figure

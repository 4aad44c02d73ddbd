"""The network's inference pass, compiled once at load: TFLite interpreters or a tf.function.

``model.predict`` costs ~50 ms a call whatever the batch size; these cost ~0.01 ms (TFLite) and
~0.25 ms (tf.function) for one row.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import warnings
from collections.abc import Callable

import numpy as np

logger = logging.getLogger(__name__)

# model_config key: how the network runs. "tflite": converted once by TensorFlow's TFLite converter
# and run by its interpreter (~0.01 ms a one-row call); "tf_function": a tf.function with a fixed
# input signature (~0.25 ms a call, TensorFlow's eager function-call overhead).
FORWARD_CONFIG = "forward"
FORWARDS = ("tflite", "tf_function")
_TFLITE_BLOCK = 8192  # rows per interpreter call on large batches
_PARALLEL_ROWS = 1024  # from this many rows, the network runs on every core


def compile_forward(
    network, n_features: int, engine: str = "tflite"
) -> Callable[[np.ndarray], np.ndarray]:
    """The network's inference pass, compiled once: float32 matrix in, 1-D float32 MPG out.

    ``engine`` is one of :data:`FORWARDS`. Either way the result is built and warmed up here and
    equals ``network.predict`` on the same matrix within 1e-4 (``model.predict`` costs ~50 ms a
    call whatever the batch size).
    """
    if engine not in FORWARDS:
        raise ValueError(f"{FORWARD_CONFIG}: {engine!r} is not one of {FORWARDS}")
    build = _tflite_forward if engine == "tflite" else _tf_function_forward
    forward = build(network, n_features)
    forward(np.zeros((1, n_features), dtype=np.float32))
    return forward


def _tf_function_forward(network, n_features: int) -> Callable[[np.ndarray], np.ndarray]:
    """A ``tf.function`` with a fixed input signature; its concrete function is called directly."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, n_features], tf.float32)])
    def infer(features):
        return network(features, training=False)

    concrete = infer.get_concrete_function()

    def forward(features: np.ndarray) -> np.ndarray:
        return concrete(tf.constant(features)).numpy()[:, 0]

    return forward


def _tflite_forward(network, n_features: int) -> Callable[[np.ndarray], np.ndarray]:
    """The network converted by ``tf.lite.TFLiteConverter`` (input ``[None, n_features]``) and run
    by TFLite interpreters with their default CPU kernels (XNNPACK).

    Batches under ``_PARALLEL_ROWS`` rows (a served request) run on a one-thread interpreter,
    inline in the caller's thread; larger batches on a second interpreter with one thread per
    core, where splitting the work pays for the hand-off.
    """
    import tensorflow as tf

    # The converter exports a SavedModel first and says so on stdout and TensorFlow's logger.
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()) as said:
            flatbuffer = tf.lite.TFLiteConverter.from_keras_model(network).convert()
    finally:
        tf_logger.setLevel(level)
    logger.debug("TFLite conversion: %s", said.getvalue().strip())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    small = _TFLiteRunner(tf, flatbuffer, n_features, threads=1)
    large = (
        _TFLiteRunner(tf, flatbuffer, n_features, threads=cores) if cores and cores > 1 else small
    )

    def forward(features: np.ndarray) -> np.ndarray:
        features = np.ascontiguousarray(features, dtype=np.float32)
        return (small if len(features) < _PARALLEL_ROWS else large)(features)

    large(np.zeros((_PARALLEL_ROWS, n_features), dtype=np.float32))  # warm up the large one too
    return forward


class _TFLiteRunner:
    """One TFLite interpreter. It is not thread-safe and holds one input shape at a time: calls
    are serialised by a lock, the input is resized only when the row count changes, and batches
    over ``_TFLITE_BLOCK`` rows run block by block so its buffers stay a few MB."""

    def __init__(self, tf, flatbuffer: bytes, n_features: int, threads: int) -> None:
        with warnings.catch_warnings():
            # TF 2.21 still ships tf.lite.Interpreter and warns that it moves to LiteRT
            # (ai_edge_litert); the runtime libraries here are TensorFlow's, pinned exactly.
            warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
            self.interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=threads)
        (self.source,) = self.interpreter.get_input_details()
        (self.target,) = self.interpreter.get_output_details()
        if list(self.source["shape_signature"]) != [-1, n_features]:
            raise ValueError(
                f"TFLite input {self.source['shape_signature']}, expected [-1, {n_features}]"
            )
        self.lock = threading.Lock()
        self.rows = 0

    def __call__(self, features: np.ndarray) -> np.ndarray:
        with self.lock:
            if len(features) <= _TFLITE_BLOCK:
                return self._run(features)
            return np.concatenate(
                [self._run(features[i : i + _TFLITE_BLOCK])
                 for i in range(0, len(features), _TFLITE_BLOCK)]
            )  # fmt: skip

    def _run(self, block: np.ndarray) -> np.ndarray:
        if len(block) != self.rows:
            self.interpreter.resize_tensor_input(self.source["index"], block.shape, strict=True)
            self.interpreter.allocate_tensors()
            self.rows = len(block)
        self.interpreter.set_tensor(self.source["index"], block)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.target["index"])[:, 0]

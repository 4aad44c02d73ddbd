"""The network's inference pass, compiled once: a TFLite flatbuffer run by LiteRT.

The network is converted to a flatbuffer once, at training time (:func:`to_flatbuffer`, which
needs TensorFlow), and logged inside the model. Serving runs that flatbuffer with Google's LiteRT
interpreter (``ai-edge-litert``, ~35 MB, no TensorFlow): ~0.01 ms for one row. Two engines that
need TensorFlow stay available by model_config: ``tflite`` (convert at load, TensorFlow's own
interpreter) and ``tf_function`` (a ``tf.function``, ~0.25 ms a call). ``model.predict`` costs
~50 ms a call whatever the batch size: none of these use it.
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

FORWARD_CONFIG = "forward"  # model_config key: the engine
FORWARDS = ("litert", "tflite", "tf_function")
THREADS_CONFIG = "forward_threads"  # model_config key: most threads for large batches; 0: cores
_BLOCK = 8192  # rows per interpreter call on large batches
_PARALLEL_ROWS = 1024  # from this many rows, the network runs on several threads
Forward = Callable[[np.ndarray], np.ndarray]


def to_flatbuffer(network) -> bytes:
    """The Keras network as a TFLite flatbuffer with input ``[None, n_features]`` (TensorFlow)."""
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
    return flatbuffer


def litert_forward(flatbuffer: bytes, n_features: int, threads: int = 0) -> Forward:
    """Run the flatbuffer with LiteRT's interpreter (no TensorFlow), warmed up.

    Batches under ``_PARALLEL_ROWS`` rows (a served request) run on a one-thread interpreter,
    inline in the caller's thread; larger ones on a second interpreter with ``threads`` threads
    (0: one per core this process may use), where splitting the work pays for the hand-off.
    """
    from ai_edge_litert.interpreter import Interpreter

    return _interpreters(Interpreter, flatbuffer, n_features, threads)


def compile_forward(network, n_features: int, engine: str = "litert", threads: int = 0) -> Forward:
    """The Keras network's forward pass on ``engine`` (one of :data:`FORWARDS`): float32 matrix
    in, 1-D float32 MPG out; equals ``network.predict`` within 1e-4."""
    if engine not in FORWARDS:
        raise ValueError(f"{FORWARD_CONFIG}: {engine!r} is not one of {FORWARDS}")
    if engine == "tf_function":
        forward = _tf_function_forward(network, n_features)
        forward(np.zeros((1, n_features), dtype=np.float32))
        return forward
    flatbuffer = to_flatbuffer(network)
    if engine == "litert":
        return litert_forward(flatbuffer, n_features, threads)
    with warnings.catch_warnings():
        # TF 2.21 still ships tf.lite.Interpreter and warns that it moves to LiteRT.
        warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
        import tensorflow as tf

        return _interpreters(tf.lite.Interpreter, flatbuffer, n_features, threads)


def _tf_function_forward(network, n_features: int) -> Forward:
    """A ``tf.function`` with a fixed input signature; its concrete function is called directly."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, n_features], tf.float32)])
    def infer(features):
        return network(features, training=False)

    concrete = infer.get_concrete_function()

    def forward(features: np.ndarray) -> np.ndarray:
        return concrete(tf.constant(features)).numpy()[:, 0]

    return forward


def _interpreters(interpreter_class, flatbuffer: bytes, n_features: int, threads: int) -> Forward:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = min(threads, cores or 1) if threads > 0 else (cores or 1)
    small = _Runner(interpreter_class, flatbuffer, n_features, threads=1)
    large = _Runner(interpreter_class, flatbuffer, n_features, threads) if threads > 1 else small

    def forward(features: np.ndarray) -> np.ndarray:
        features = np.ascontiguousarray(features, dtype=np.float32)
        return (small if len(features) < _PARALLEL_ROWS else large)(features)

    small(np.zeros((1, n_features), dtype=np.float32))  # warm up both
    large(np.zeros((_PARALLEL_ROWS, n_features), dtype=np.float32))
    # how it splits a batch, for a caller that encodes block by block (CarnnModel)
    forward.block_rows, forward.parallel_rows = _BLOCK, _PARALLEL_ROWS
    return forward


class _Runner:
    """One interpreter. It is not thread-safe and holds one input shape at a time: calls are
    serialised by a lock, the input is resized only when the row count changes, and batches over
    ``_BLOCK`` rows run block by block so its buffers stay a few MB."""

    def __init__(self, interpreter_class, flatbuffer: bytes, n_features: int, threads: int):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"(?s).*Interpreter is deprecated")
            self.interpreter = interpreter_class(model_content=flatbuffer, num_threads=threads)
        (self.source,) = self.interpreter.get_input_details()
        (self.target,) = self.interpreter.get_output_details()
        if list(self.source["shape_signature"]) != [-1, n_features]:
            raise ValueError(
                f"flatbuffer input {self.source['shape_signature']}, expected [-1, {n_features}]"
            )
        self.lock = threading.Lock()
        self.rows = 0

    def __call__(self, features: np.ndarray) -> np.ndarray:
        with self.lock:
            if len(features) <= _BLOCK:
                return self._run(features)
            blocks = range(0, len(features), _BLOCK)
            return np.concatenate([self._run(features[i : i + _BLOCK]) for i in blocks])

    def _run(self, block: np.ndarray) -> np.ndarray:
        if len(block) != self.rows:
            self.interpreter.resize_tensor_input(self.source["index"], block.shape, strict=True)
            self.interpreter.allocate_tensors()
            self.rows = len(block)
        self.interpreter.set_tensor(self.source["index"], block)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.target["index"])[:, 0]  # a copy already

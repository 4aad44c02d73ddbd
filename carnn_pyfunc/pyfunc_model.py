"""Where models logged by carnn 1d04ef0..73b55e9 (model formats 1 and 2) find their PythonModel.

Their "models from code" file says ``from carnn_pyfunc.pyfunc_model import CarnnModel``; this
name keeps that import working, so loading such a model with this release reaches the current
pyfunc (which serves format 2 and refuses format 1 with one line) instead of an ImportError.
"""

from carnn_pyfunc.model.pyfunc import CarnnModel

__all__ = ["CarnnModel"]

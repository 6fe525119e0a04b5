"""The package version, in a leaf module: run files record it (grid.py's sweep.json, export.py's ONNX metadata)
without importing the package's ``__init__``, which imports the training code."""

__version__ = "0.2.0"

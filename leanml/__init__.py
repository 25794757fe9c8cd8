"""leanml: compress, search and NAS for Keras models, wired by DVC and tracked by MLflow."""

import os

# Quiet TensorFlow before anything imports it; users can still override both.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

__version__ = "0.1.0"

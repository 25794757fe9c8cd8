"""leanml: compress, search and NAS for Keras models, wired by DVC and tracked by MLflow."""

import os

# Quiet TensorFlow before anything imports it; users can still override both. Level 3 hides its
# C++ log lines too: under op determinism every Keras fit logs an "E0000 ... NodeDef mentions
# attribute use_unbounded_threadpool" line (tf.data's parallel map rewritten to a sequential one;
# harmless), which would bury each stage's own output. Errors still raise Python exceptions;
# TF_CPP_MIN_LOG_LEVEL=0 shows everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

__version__ = "0.1.0"

"""The model-from-code file of a logged candidate (see `tracking_models`): MLflow copies it into
the model and runs it on load."""

import warnings

import mlflow

with warnings.catch_warnings():  # "add type hints to predict": the signature says it all
    warnings.simplefilter("ignore", UserWarning)
    from leanml.tracking_models import CandidateFile

    mlflow.models.set_model(CandidateFile())

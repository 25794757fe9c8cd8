"""The model-from-code file of a logged candidate (see `tracking_models`): MLflow copies it into
the model and runs it on load."""

import mlflow

from leanml.tracking_models import CandidateFile

mlflow.models.set_model(CandidateFile())

"""The registered model's code, logged with it (MLflow's "models from code").

MLflow stores this file with every version, together with a copy of ``models/`` (the
``code_paths``), and runs it when the version is loaded: a version loads with
``mlflow.pyfunc.load_model`` in any process with its pip requirements installed, with no
cartlift checkout on ``sys.path``. Nothing imports this module; it is loaded from its path.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.ranking.batch import predict_frame
from models.ranking.bundle import Bundle

ARTIFACT = "bundle"  # the name infra.registry logs the bundle under


class CartliftModel(PythonModel):
    """Top-k recommendations for a frame of ``user_id`` (and optional ``k``)
    (:func:`models.ranking.batch.predict_frame`). Serving wraps the same bundle with
    filters and business rules (:class:`models.ranking.engine.Engine`)."""

    bundle: Bundle

    def load_context(self, context) -> None:
        self.bundle = Bundle.load(context.artifacts[ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return predict_frame(self.bundle, model_input)


mlflow.models.set_model(CartliftModel())

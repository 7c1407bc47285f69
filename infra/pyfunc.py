"""The registered model as an MLflow pyfunc: the LightFM model and its maps as one artifact."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from models.ranking.bundle import Bundle
from models.ranking.topk import top_k
from models.recommenders.hybrid import HybridModel

ARTIFACT = "bundle"
MAX_K = 100


class CartliftModel(mlflow.pyfunc.PythonModel):
    """Top-k recommendations for a frame of ``user_id`` (and optional ``k``).

    Unknown users get the model's item ranking alone (the learned item biases), so a
    prediction never fails on a new customer. Serving wraps the same artifact with
    filters and business rules.
    """

    def load_context(self, context) -> None:
        self.bundle = Bundle.load(context.artifacts[ARTIFACT])

    @property
    def model(self) -> HybridModel:
        return self.bundle.model

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        users = model_input["user_id"].astype(str).to_numpy(dtype=object)
        k = int(min(MAX_K, model_input["k"].max() if "k" in model_input else 10))
        vec = self.model.vectors(users, None, self.model.item_ids, None)
        idx, scores = top_k(vec.users, vec.items, vec.item_bias, k)
        return pd.DataFrame(
            {
                "user_id": np.repeat(users, idx.shape[1]),
                "rank": np.tile(np.arange(1, idx.shape[1] + 1), len(users)),
                "item_id": self.model.item_ids[idx.ravel()],
                "score": scores.ravel().astype(float),
            }
        )

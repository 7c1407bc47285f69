"""The pure ML core: data, features, recommenders, ranking and evaluation.

No MLflow, Prefect, BentoML or Evidently here, no environment reads, file I/O only at paths
given as arguments (the import contracts in ``pyproject.toml`` hold it so).
"""

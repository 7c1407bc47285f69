"""Prefect flows, the MLflow registry glue and the `cartlift` command line."""

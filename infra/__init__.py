"""What connects cartlift to the services that run it: the environment, the lake, the MLflow
registry and its model format, report files. Used by ``flows/`` and ``serving/`` alike.

Beside the code: the Dockerfile, Compose file and Kubernetes manifests that run it at scale.
"""

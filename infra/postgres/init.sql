-- One PostgreSQL for the services: Prefect's orchestration state, MLflow's tracking and
-- registry store, and the live events the service takes at /events. Run once by the
-- postgres image on an empty volume.
CREATE DATABASE prefect;
CREATE DATABASE mlflow;
CREATE DATABASE events;

-- One PostgreSQL for both services: Prefect's orchestration state and MLflow's tracking
-- and registry store. Run once by the postgres image on an empty volume.
CREATE DATABASE prefect;
CREATE DATABASE mlflow;

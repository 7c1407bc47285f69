"""The BentoML service: the champion over HTTP; thin endpoints over models.ranking.engine."""

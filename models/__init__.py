"""The ML core: data contract, shop generator, features, models, ranking, metrics."""

"""Every recommender behind one interface: the hybrid LightFM model and the baselines."""

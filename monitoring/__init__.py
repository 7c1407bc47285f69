"""Evidently drift and quality monitoring: what moved in the shop and in the served answers."""

"""Evidently drift and quality monitoring (the monitoring milestone builds it here)."""

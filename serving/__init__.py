"""BentoML service for the champion model (the serving milestone builds it here)."""

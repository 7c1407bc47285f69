"""cartlift package."""

"""From scores to the lists a shop shows: top-k, business rules, the bundle, the engine."""

"""From events to model inputs: temporal split, weighted interactions, feature tokens."""

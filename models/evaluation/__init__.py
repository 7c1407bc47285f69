"""One protocol for every figure: tasks from a split, metrics, the gate, verdicts, tuning."""

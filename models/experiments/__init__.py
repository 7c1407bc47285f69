"""Online experiments: champion against challenger, assignment and (later) their KPIs."""

"""baselines (to come: see the issues)."""

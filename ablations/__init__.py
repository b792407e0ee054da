"""ablations (to come: see the issues)."""

"""Stream processors: one Faust agent per module."""

"""Watching the served model: the prediction log (and, next, drift)."""

"""Serving the champion over HTTP."""

"""Pods that run their real image on a Docker engine (engine.py, images.py, runtime.py)."""

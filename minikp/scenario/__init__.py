"""Scenario files → validated, pure data (model.py) → an allocated plan (plan.py)."""

"""`minikp tui`: a Textual dashboard over a running cluster (app.py: the screens; view.py: what
they show, pure; source.py: where it comes from — a live cluster or a fixed one for tests)."""

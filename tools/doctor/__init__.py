"""`make doctor`: is a live cluster ready for the first sync? (read-only; tools/doctor/checks.py)."""

"""Tools of tf-serving-gitops: validate, render, check, publish, bump, status, client, profile, bench.

Run from the repository root: `python -m tools --help`.
"""

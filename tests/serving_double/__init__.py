"""A test double of TF Serving's REST and gRPC predict APIs over an exported SavedModel (see double.py).

It lives under tests/ on purpose: it exists so the client and profiler can be tested without a TF Serving
binary, and is never shipped as a server. Fixtures are in fixtures.py (registered in tests/conftest.py).
"""
from tests.serving_double.double import Call, ServingDouble  # noqa: F401

"""The kubernetes client with only its HTTP layer replaced by recorded answers: its own request building and
deserialization still run. Shared by the doctor, status and rollout-status tests, which each route requests to
their own recordings (a `rest` object with a GET method, as kubernetes.client.rest.RESTClientObject has)."""
from __future__ import annotations

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

REASONS = {200: "OK", 403: "Forbidden", 404: "Not Found"}


class Response:
    """What urllib3 hands the client: status, reason, bytes, headers."""

    def __init__(self, status: int, data: bytes):
        self.status, self.reason, self.data = status, REASONS[status], data

    def getheaders(self):
        return {"Content-Type": "application/json"}

    def getheader(self, name, default=None):
        return self.getheaders().get(name, default)


def answer(status: int, data: bytes) -> Response:
    """The response to a recorded GET; any other status than 200 raised as the client raises it."""
    response = Response(status, data)
    if status != 200:
        raise ApiException(http_resp=response)
    return response


def api_client(host: str, rest) -> k8s.ApiClient:
    configuration = k8s.Configuration()
    configuration.host = host
    api = k8s.ApiClient(configuration)
    api.rest_client = rest
    return api

"""Read-only access to one cluster through the kubernetes Python client, as plain JSON dicts.

Every method is a GET (get/list/read); nothing is created, patched or deleted. A 404 is None (or []), any other
API or connection failure raises ClusterError with one line, which the caller turns into a failed finding.
"""
from __future__ import annotations

from typing import Any


class ClusterError(Exception):
    pass


def _errors():
    import urllib3
    from kubernetes.client.exceptions import ApiException

    return ApiException, urllib3.exceptions.HTTPError, OSError


def _line(exc: BaseException) -> str:
    status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
    if status:
        return f"HTTP {status} {reason or ''}".strip()
    text = str(reason or exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


class Cluster:
    def __init__(self, api_client):
        from kubernetes import client as k8s

        self.api = api_client
        self.core = k8s.CoreV1Api(api_client)
        self.apps = k8s.AppsV1Api(api_client)
        self.version_api = k8s.VersionApi(api_client)
        self.apiregistration = k8s.ApiregistrationV1Api(api_client)
        self.apiextensions = k8s.ApiextensionsV1Api(api_client)
        self.autoscaling = k8s.AutoscalingV2Api(api_client)
        self.custom = k8s.CustomObjectsApi(api_client)

    def _call(self, what: str, fn, *args, missing: Any = ClusterError, **kwargs) -> Any:
        try:
            return self.api.sanitize_for_serialization(fn(*args, **kwargs))
        except _errors() as exc:
            if getattr(exc, "status", None) == 404 and missing is not ClusterError:
                return missing
            raise ClusterError(f"cannot read {what}: {_line(exc)}") from None
        except ValueError as exc:  # the client refused the answer's shape (a required field missing)
            raise ClusterError(f"cannot read {what}: unexpected answer ({exc})") from None

    def version(self) -> dict:
        return self._call("the server version", self.version_api.get_code)

    def nodes(self) -> list[dict]:
        return self._call("nodes", self.core.list_node)["items"]

    def namespace(self, name: str) -> dict | None:
        return self._call(f"namespace {name}", self.core.read_namespace, name, missing=None)

    def service_account(self, namespace: str, name: str) -> dict | None:
        return self._call(f"ServiceAccount {namespace}/{name}", self.core.read_namespaced_service_account, name,
                          namespace, missing=None)

    def events(self, namespace: str) -> list[dict]:
        return self._call(f"events in {namespace}", self.core.list_namespaced_event, namespace, missing={"items": []})["items"]

    def api_service(self, name: str) -> dict | None:
        return self._call(f"APIService {name}", self.apiregistration.read_api_service, name, missing=None)

    def crd(self, name: str) -> dict | None:
        return self._call(f"CustomResourceDefinition {name}", self.apiextensions.read_custom_resource_definition,
                          name, missing=None)

    def deployments(self, namespace: str, label_selector: str) -> list[dict]:
        return self._call(f"Deployments in {namespace}", self.apps.list_namespaced_deployment, namespace,
                          label_selector=label_selector, missing={"items": []})["items"]

    def deployments_everywhere(self, label_selector: str) -> list[dict]:
        return self._call(f"Deployments ({label_selector}) in all namespaces",
                          self.apps.list_deployment_for_all_namespaces, label_selector=label_selector)["items"]

    def daemonsets_everywhere(self) -> list[dict]:
        return self._call("DaemonSets in all namespaces", self.apps.list_daemon_set_for_all_namespaces)["items"]

    def pods(self, namespace: str, label_selector: str) -> list[dict]:
        return self._call(f"Pods ({label_selector}) in {namespace}", self.core.list_namespaced_pod, namespace,
                          label_selector=label_selector, missing={"items": []})["items"]

    def horizontal_pod_autoscalers(self, namespace: str) -> list[dict]:
        return self._call(f"HorizontalPodAutoscalers in {namespace}",
                          self.autoscaling.list_namespaced_horizontal_pod_autoscaler, namespace,
                          missing={"items": []})["items"]

    def custom_objects(self, group: str, version: str, plural: str) -> list[dict]:
        """Every object of a custom resource in all namespaces; [] when its CRD is not installed (404)."""
        return self._call(f"{plural}.{group} in all namespaces", self.custom.list_cluster_custom_object, group,
                          version, plural, missing={"items": []})["items"]

    def secret_labels(self, namespace: str, label_selector: str) -> dict[str, dict[str, str]]:
        """name -> labels of the matching Secrets; their data is never returned or printed."""
        items = self._call(f"Secrets in {namespace}", self.core.list_namespaced_secret, namespace,
                           label_selector=label_selector, missing={"items": []})["items"]
        return {s["metadata"]["name"]: dict(s["metadata"].get("labels") or {}) for s in items}

"""The kube tier's access to one namespace, and its front door on 127.0.0.1.

``KubeApi`` is the only way the kube backend talks to a cluster: every call names *its*
namespace (none takes another), results are plain camelCase dicts, and every client
exception is wrapped where it is raised into the kit's error tree with the server's own
message. ``ServiceProxy`` serves ``http://127.0.0.1:PORT`` and forwards each request to the
API server's service proxy (``services/<name>:http/proxy``), so only ready pods behind the
Service answer, as through the Docker tier's gateway, with no port-forward permission.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from .. import labels
from ..errors import (
    ClusterUnreachable,
    InfrastructureError,
    InvalidInput,
    KubeApiError,
    KubeBusy,
    KubeConflict,
    KubeForbidden,
    KubeInvalid,
)
from ..settings import Settings

SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "default")
#: kind -> (API group attribute of KubeApi, snake-case suffix of the client's methods)
KINDS: dict[str, tuple[str, str]] = {
    "ConfigMap": ("core", "config_map"),
    "PersistentVolumeClaim": ("core", "persistent_volume_claim"),
    "Service": ("core", "service"),
    "Pod": ("core", "pod"),
    "Event": ("core", "event"),
    "ServiceAccount": ("core", "service_account"),
    "Deployment": ("apps", "deployment"),
    "ReplicaSet": ("apps", "replica_set"),
    "Job": ("batch", "job"),
    "Role": ("rbac", "role"),
    "RoleBinding": ("rbac", "role_binding"),
}
JSON_PATCH = "application/json-patch+json"
FORBIDDEN_FIX = ("your cluster account may not do this (RBAC) or the namespace quota is exhausted:"
                 " ask your instructor, or free resources (`labkit sandbox reset`)")
MERGE_PATCH = "application/merge-patch+json"


def api_error(e: ApiException, doing: str, namespace: str) -> Exception:
    """The kit's exception for a client exception: the class by HTTP status (which decides
    ``temporary``), the parsed ``Status`` attached, and the server's reason and causes printed."""
    try:
        body = json.loads(e.body or "{}")
    except ValueError:
        body = {}
    status = body if isinstance(body, dict) and body.get("kind") == "Status" else {}
    message = status.get("message") or e.reason or "no answer"
    causes = [c.get("message", "") for c in (status.get("details") or {}).get("causes") or []]
    text = f"{doing} in namespace {namespace}: {message}" + (f" ({'; '.join(causes)})" if causes else "")
    code = int(e.status or 0)
    if code == 422:
        return KubeInvalid(text)
    fixes = {
        401: "your cluster credentials were rejected: refresh them (kubeconfig) or ask your instructor",
        403: FORBIDDEN_FIX,
        409: "someone changed it at the same time: run the command again",
    }
    cls = {403: KubeForbidden, 409: KubeConflict}.get(code) or (
        KubeBusy if code in (0, 429) or code >= 500 else KubeApiError)
    return cls(code, text, fixes.get(code), status)


def new_api_client(settings: Settings, retries: int = 1) -> client.ApiClient:
    """An API client for the configured kubeconfig/context (or in-cluster credentials)."""
    kube = settings.kube
    path = kube.kubeconfig or os.environ.get("KUBECONFIG", "") or str(Path.home() / ".kube" / "config")
    cfg = client.Configuration()
    cfg.retries = retries  # a dead API server fails in one or two timeouts, not four
    try:
        if not kube.kubeconfig and not Path(path.split(os.pathsep)[0]).exists() \
                and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(config_file=path, context=kube.context or None, client_configuration=cfg)
        return client.ApiClient(cfg)
    except (ConfigException, OSError, ValueError, TypeError) as e:
        raise ClusterUnreachable(kube.context, f"no usable kubeconfig at {path}: {e}") from e


def check_namespace(namespace: str) -> str:
    """``namespace`` if a sandbox may live there; never a system namespace."""
    if namespace in SYSTEM_NAMESPACES or not namespace:
        raise InvalidInput(f"namespace {namespace!r} is not a sandbox namespace; unset"
                           " LABKIT_KUBE_NAMESPACE to use labkit-<sandbox id>")
    return namespace


def matches(selector: str, obj_labels: dict[str, str] | None) -> bool:
    """Whether labels satisfy an equality selector (``a=b,c=d``); checked on our side too."""
    have = obj_labels or {}
    pairs = [part.split("=", 1) for part in selector.split(",") if "=" in part]
    return all(have.get(k.strip()) == v.strip() for k, v in pairs)


class KubeApi:
    """Typed access to one namespace: read, list, create, patch, delete; plain dicts back."""

    def __init__(self, api_client: client.ApiClient, namespace: str, context: str = "",
                 timeout_s: float = 15.0) -> None:
        self.namespace = check_namespace(namespace)
        self.api_client = api_client
        self.context = context
        self.timeout = timeout_s
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.rbac = client.RbacAuthorizationV1Api(api_client)

    # --- calls and errors -----------------------------------------------------------------
    def call(self, doing: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the client; wrap its exceptions; results as plain camelCase dicts."""
        kwargs.setdefault("_request_timeout", self.timeout)
        try:
            result = fn(*args, **kwargs)
        except ApiException as e:
            if not e.status:
                raise ClusterUnreachable(self.context, f"{doing}: {e.reason}") from e
            raise api_error(e, doing, self.namespace) from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise ClusterUnreachable(self.context, f"{doing}: {str(e).splitlines()[0][:200]}") from e
        except ValueError as e:  # the client's models rejected a body or an answer
            raise InfrastructureError(f"{doing}: the Kubernetes client rejected the data: {str(e)[:300]}") from e
        return self.api_client.sanitize_for_serialization(result)

    def ping(self, timeout_s: float = 3.0) -> dict[str, Any]:
        """The server's ``/version``, or ``ClusterUnreachable``."""
        try:
            return self.call("asking the API server its version", client.VersionApi(self.api_client).get_code,
                             _request_timeout=timeout_s)
        except KubeApiError as e:
            raise ClusterUnreachable(self.context, e.message) from e

    def _fn(self, verb: str, kind: str) -> Callable[..., Any]:
        group, suffix = KINDS[kind]
        return getattr(getattr(self, group), f"{verb}_namespaced_{suffix}")

    def _guard(self, obj: dict[str, Any]) -> None:
        ns = (obj.get("metadata") or {}).get("namespace")
        if ns not in (None, self.namespace):
            raise InvalidInput(f"refusing to act in namespace {ns}: this sandbox works in {self.namespace} only")

    # --- namespaced verbs -----------------------------------------------------------------
    def read(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object, or None if it does not exist."""
        try:
            return self.call(f"reading {kind} {name}", self._fn("read", kind), name, self.namespace)
        except KubeApiError as e:
            if e.code == 404:
                return None
            raise

    def list(self, kind: str, selector: str = "", field_selector: str | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
        if field_selector:
            kwargs["field_selector"] = field_selector
        out = self.call(f"listing {kind}s", self._fn("list", kind), self.namespace, **kwargs)
        return [o for o in out.get("items") or [] if matches(selector, (o.get("metadata") or {}).get("labels"))]

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._guard(obj)
        obj = {**obj, "metadata": {**obj["metadata"], "namespace": self.namespace}}
        return self.call(f"creating {obj['kind']} {obj['metadata']['name']}", self._fn("create", obj["kind"]),
                         self.namespace, obj)

    def patch(self, kind: str, name: str, body: Any, content_type: str = MERGE_PATCH) -> dict[str, Any]:
        return self.call(f"patching {kind} {name}", self._fn("patch", kind), name, self.namespace, body,
                         _content_type=content_type)

    def delete(self, kind: str, name: str) -> bool:
        """Delete (children in the background); False if it was already gone."""
        try:
            self.call(f"deleting {kind} {name}", self._fn("delete", kind), name, self.namespace,
                      propagation_policy="Background")
        except KubeApiError as e:
            if e.code == 404:
                return False
            raise
        return True

    def resize(self, pod: str, patch: list[dict[str, Any]]) -> dict[str, Any]:
        """In-place pod resize (the ``resize`` subresource, Kubernetes 1.33+): a JSON patch of
        the containers' resources, applied by the kubelet without a restart."""
        return self.call(f"resizing pod {pod} in place", self.core.patch_namespaced_pod_resize, pod,
                         self.namespace, patch, _content_type=JSON_PATCH)

    def node_images(self) -> set[str] | None:
        """Every image name the nodes report holding; None when this account may not list
        nodes (cohort trainees) or the answer is not usable."""
        try:
            nodes = self.call("listing nodes", self.core.list_node).get("items") or []
        except (KubeApiError, ClusterUnreachable):
            return None
        return {name for node in nodes for image in (node.get("status") or {}).get("images") or []
                for name in image.get("names") or []}

    def scale(self, deployment: str, replicas: int) -> dict[str, Any]:
        return self.call(f"scaling Deployment {deployment}", self.apps.patch_namespaced_deployment_scale,
                         deployment, self.namespace, {"spec": {"replicas": replicas}}, _content_type=MERGE_PATCH)

    def pod_log(self, pod: str, tail: int | None = None, previous: bool = False, container: str | None = None) -> str:
        kwargs: dict[str, Any] = {"previous": previous}
        if tail:
            kwargs["tail_lines"] = tail
        if container:
            kwargs["container"] = container
        try:
            return self.call(f"reading the log of pod {pod}", self.core.read_namespaced_pod_log, pod,
                             self.namespace, **kwargs) or ""
        except (KubeApiError, KubeInvalid) as e:
            if getattr(e, "code", 0) in (400, 404):  # no previous container, or gone
                return ""
            raise

    # --- the namespace itself --------------------------------------------------------------
    def read_namespace(self) -> dict[str, Any] | None:
        """The namespace, None if missing; ``{}`` if this account may not read namespaces."""
        try:
            return self.call(f"reading namespace {self.namespace}", self.core.read_namespace, self.namespace)
        except KubeApiError as e:
            if e.code == 404:
                return None
            if e.code == 403:
                return {}
            raise

    def create_namespace(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["metadata"]["name"] != self.namespace:
            raise InvalidInput(f"refusing to create namespace {obj['metadata']['name']}: not {self.namespace}")
        return self.call(f"creating namespace {self.namespace}", self.core.create_namespace, obj)

    def delete_namespace(self) -> None:
        self.call(f"deleting namespace {self.namespace}", self.core.delete_namespace, self.namespace)

    # --- the API server's service proxy -----------------------------------------------------
    def proxy(self, target: str, method: str, path: str, body: Any = None,
              timeout_s: float = 10.0) -> tuple[int, bytes, str]:
        """One HTTP request through the API server's proxy to ``target``
        (``services/modelapi:http`` or ``pods/<name>:8080``): status, body, content type."""
        resource = f"/api/v1/namespaces/{self.namespace}/{target}/proxy{path}"
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            m, url, hdrs, data, _ = self.api_client.param_serialize(
                method, resource.split("?", 1)[0], header_params=headers, body=body, auth_settings=["BearerToken"])
            if "?" in resource:
                url += "?" + resource.split("?", 1)[1]
            r = self.api_client.call_api(m, url, hdrs, data, _request_timeout=timeout_s)
            return r.status, r.read() or b"", r.headers.get("Content-Type", "application/json")
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as e:
            raise ClusterUnreachable(self.context, f"{method} {path} via {target}: {e}") from e


def is_proxy_error(status: int, payload: bytes) -> str:
    """The API server's own message when it (not the service) answered, else ''."""
    if status < 400:
        return ""
    try:
        body = json.loads(payload or b"{}")
    except ValueError:
        return ""
    if isinstance(body, dict) and body.get("kind") == "Status" and "code" in body:
        return str(body.get("message") or body.get("reason") or status)
    return ""


class ServiceProxy:
    """``http://127.0.0.1:PORT`` in front of a Service (or, with ``target``, one pod:
    ``pods/<name>:8080``), through the API server's proxy, for ``ServiceClient`` and graders."""

    def __init__(self, api: KubeApi, service: str, port: int = 0, target: str | None = None) -> None:
        self.api = api
        self.service = service
        self.target = target or f"services/{service}:http"
        handler = self._handler()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"labkit-proxy-{service}",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                try:
                    status, payload, ctype = proxy.api.proxy(proxy.target, self.command, self.path, body)
                except InfrastructureError as e:
                    status, payload, ctype = 502, json.dumps({"reason": "unreachable", "detail": e.message}).encode(), \
                        "application/json"
                message = is_proxy_error(status, payload)
                if message:  # no ready replica, no service, or not allowed: say so like the app does
                    code = 503 if status in (502, 503) else status
                    payload = json.dumps({"ready": False, "reason": "unreachable",
                                          "detail": f"service {proxy.service}: {message}"}).encode()
                    status, ctype = code, "application/json"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
                return

        return Handler


def ensure_ours(obj: dict[str, Any] | None, sandbox_id: str, what: str) -> None:
    """Refuse to adopt an object this sandbox did not make."""
    if obj is not None and not labels.is_ours((obj.get("metadata") or {}).get("labels"), sandbox_id):
        raise InfrastructureError(
            f"{what} exists but was not made by sandbox {sandbox_id}",
            fix="choose another LABKIT_SANDBOX_ID or LABKIT_KUBE_NAMESPACE; the kit never touches foreign objects",
        )


__all__ = ["KubeApi", "KubeApiError", "KubeInvalid", "ServiceProxy", "new_api_client", "api_error",
           "check_namespace", "ensure_ours", "JSON_PATCH", "MERGE_PATCH"]

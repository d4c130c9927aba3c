"""One exception tree for the whole kit; a class decides what a caller does with it.

``LabkitError`` is the root. Below it, three branches:

* ``StateError``: the trainee's sandbox is not in the state something wants (nothing deployed,
  not up, the service not answering, a rollout that never got ready, a check that failed).
  In grading this is the trainee's result: it scores, it is never retried.
* ``InfrastructureError``: the machinery is unusable (Docker daemon down, cluster unreachable,
  image missing, the API server refusing, a wait that ran out). One line says what is wrong and
  ``fix`` names the command that repairs it. The class attribute ``temporary`` says whether the
  same call may succeed later (kopf's temporary/permanent split): the grader retries a
  submission on a fresh sandbox only for a temporary one and never turns either into a score.
* ``InvalidInput``: the caller asked for something that does not exist or is out of range
  (unknown model, index, revision, fault, lab; bad replica count). The message names the valid
  choices or the tool's own message.

Every client exception is wrapped where it is called (``raise ... from e``). ``error_class``
finds a class of this tree by name (an error that crossed a process boundary as its name).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class LabkitError(Exception):
    """Root of every error the kit raises on purpose."""

    #: Exit status the CLI uses for this family.
    exit_code: int = 2

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message} (fix: {self.fix})"
        return self.message


# --- the trainee's state is not what is wanted ------------------------------------------------


class StateError(LabkitError):
    """The sandbox is not in the state a caller (or a check) wants; the trainee can change it."""

    exit_code = 1


class SandboxNotUp(StateError):
    """The sandbox has not been brought up (or was torn down)."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(
            f"sandbox {sandbox_id} is not up",
            fix="run `labkit sandbox up` (or `sb.up()` in a notebook)",
        )


class NoRevisionDeployed(StateError):
    """The sandbox is up but nothing is deployed yet."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(
            f"sandbox {sandbox_id} has no revision deployed yet",
            fix="run `labkit deploy --model v1` (or `sb.deploy(model='v1')`)",
        )


class ServiceError(StateError):
    """The model API answered with an error or not at all."""


class RolloutFailed(StateError):
    """A new revision never became ready; the previous revision keeps serving."""

    def __init__(self, revision: int, reason: str, serving: int | None, logs: str = "") -> None:
        keeps = f"revision {serving} keeps serving" if serving else "nothing is serving"
        super().__init__(
            f"rollout of revision {revision} failed: {reason}; {keeps}",
            fix="inspect `labkit rollout history` and the revision's logs, then"
            " `labkit rollout undo`",
        )
        self.revision = revision
        self.reason = reason
        self.serving = serving
        self.logs = logs


class CheckFailed(StateError, AssertionError):
    """A check of live state failed (``expect``). It carries the check's result (observed,
    expected and, in the kernel's self-check, a hint) and prints as that, never as a traceback
    of the kit's internals. An ``AssertionError``, so nbgrader counts it as a failed test."""

    def __init__(self, result: object) -> None:
        super().__init__(str(result))
        self.result = result


class SteadyStateBroken(StateError):
    """A scenario was called resolved, but the fault's steady-state probes do not all hold."""

    def __init__(self, fault: str, broken: Iterable[str], when: str = "now") -> None:
        listed = "; ".join(broken)
        super().__init__(
            f"{fault}: the steady state does not hold {when}: {listed}",
            fix="keep mitigating; `labkit fault status` shows every probe, then resolve again",
        )
        self.fault = fault


# --- the infrastructure is unusable -------------------------------------------------------


class InfrastructureError(LabkitError):
    """Docker, the cluster, an image or a tool the kit needs is not usable."""

    #: Whether retrying the same call later (on a fresh sandbox, for the grader) may succeed.
    temporary: bool = False


class DockerUnavailable(InfrastructureError):
    """No Docker daemon answers at the configured address (or it went away mid-call)."""

    temporary = True

    def __init__(self, address: str, detail: str = "") -> None:
        reason = f": {detail}" if detail else ""
        super().__init__(
            f"Docker daemon not reachable at {address}{reason}",
            fix="run `make docker` (starts dockerd as root on Debian) or start Docker Desktop,"
            " or point DOCKER_HOST at a running daemon",
        )
        self.address = address


class EngineFailure(InfrastructureError):
    """The engine answered but refused or lost an operation (a container killed under the
    kit, a network pool exhausted, an exec that failed)."""

    temporary = True


class ClusterUnreachable(InfrastructureError):
    """No Kubernetes API server answers for the configured context."""

    temporary = True

    def __init__(self, context: str, detail: str = "") -> None:
        reason = f": {detail}" if detail else ""
        super().__init__(
            f"Kubernetes cluster not reachable (context {context or 'default'}){reason}",
            fix="run `labkit cluster create` for a local kind cluster, or set"
            " LABKIT_KUBE_CONTEXT / KUBECONFIG to a reachable cluster",
        )


class KubeApiError(InfrastructureError):
    """The API server refused a request. ``code`` is its HTTP status (0: no answer) and
    ``status`` the parsed ``Status`` object it sent (``reason``, ``message``, ``details``)."""

    def __init__(self, code: int, message: str, fix: str | None = None,
                 status: dict[str, Any] | None = None) -> None:
        super().__init__(message, fix=fix)
        self.code = code
        self.status = status or {}

    @property
    def reason(self) -> str:
        return str(self.status.get("reason") or "")


class KubeForbidden(KubeApiError):
    """403: RBAC or an admission controller (a ResourceQuota) refused it."""


class KubeConflict(KubeApiError):
    """409: someone changed the object in between; the same call on fresh state may pass."""

    temporary = True


class KubeBusy(KubeApiError):
    """429, 5xx or no answer: the API server is overloaded or restarting."""

    temporary = True


class ImageMissing(InfrastructureError):
    """An image a deploy needs is not present in the engine."""

    def __init__(self, image: str) -> None:
        super().__init__(f"image {image} is not built", fix="run `labkit images build`")
        self.image = image


class PortInUse(InfrastructureError):
    """The port the sandbox wants on 127.0.0.1 is taken."""

    def __init__(self, port: int) -> None:
        super().__init__(
            f"port {port} on 127.0.0.1 is already in use",
            fix="set LABKIT_PORT to a free port, or unset it to let Docker pick one",
        )
        self.port = port


class ToolMissing(InfrastructureError):
    """An external command-line tool is not installed."""

    def __init__(self, tool: str, how: str) -> None:
        super().__init__(f"`{tool}` is not installed", fix=how)
        self.tool = tool


class WaitTimeout(InfrastructureError):
    """A wait of the kit's machinery ran out (``sandbox.waiting``); ``observed`` is the last
    thing it saw and ``logs`` what the component printed meanwhile."""

    temporary = True

    def __init__(self, what: str, timeout_s: float, observed: str = "", logs: str = "",
                 fix: str | None = None) -> None:
        seen = f"; last seen: {observed}" if observed else ""
        super().__init__(f"{what}: not done within {timeout_s:g} s{seen}", fix=fix)
        self.observed = observed
        self.logs = logs


class PrometheusUnavailable(InfrastructureError):
    """The sandbox's Prometheus or Alertmanager does not answer."""

    temporary = True

    def __init__(self, what: str, detail: str = "") -> None:
        reason = f": {detail}" if detail else ""
        super().__init__(
            f"{what} of the sandbox does not answer{reason}",
            fix="run `labkit sandbox up` (starts the monitoring stack again); `labkit sandbox status`"
            " lists its containers; LABKIT_MONITORING=0 means the sandbox runs without it",
        )


# --- bad input ----------------------------------------------------------------------------


class InvalidInput(LabkitError, ValueError):
    """The caller asked for something that does not exist or is out of range."""


class UnknownChoice(InvalidInput):
    """A name that is not among the valid ones; the message lists them."""

    def __init__(self, kind: str, value: object, valid: Iterable[object]) -> None:
        choices = ", ".join(str(v) for v in valid) or "(none yet)"
        super().__init__(f"unknown {kind} {value!r}; valid: {choices}")
        self.kind = kind
        self.value = value
        self.valid = list(valid)


class ForeignImage(InvalidInput):
    """An image that is not of the model API's repository: a sandbox runs the kit's images only
    (a grading box must not start whatever else the engine holds on the sandbox's network)."""

    def __init__(self, image: str, repository: str) -> None:
        super().__init__(f"image {image!r} is not a model API image; a sandbox runs {repository}:<tag> only"
                         f" (for example {repository}:1.0.0)")
        self.image = image


class InvalidReplicas(InvalidInput):
    """Replica count outside the allowed range."""

    def __init__(self, value: object, low: int, high: int) -> None:
        super().__init__(f"replicas must be an integer from {low} to {high}, got {value!r}")


class KubeInvalid(InvalidInput):
    """The API server rejected an object as invalid (422), naming the fields."""

    code = 422


class BadQuery(InvalidInput):
    """Prometheus refused a PromQL expression; the message is Prometheus's own."""

    def __init__(self, promql: str, message: str) -> None:
        super().__init__(f"Prometheus rejected {promql!r}: {message}")
        self.promql = promql
        self.detail = message


class RuleFileRejected(InvalidInput):
    """``promtool check rules`` (or Prometheus's reload) refused a rule file: nothing was
    loaded. ``problems`` holds promtool's own messages, one per line."""

    def __init__(self, path: str, problems: list[str], tool: str = "promtool check rules") -> None:
        listed = "\n  ".join(problems) or "(no message)"
        super().__init__(f"{path} rejected by `{tool}`, nothing loaded:\n  {listed}")
        self.path = path
        self.problems = problems


class RuleTestsFailed(InvalidInput):
    """``promtool test rules`` ran the unit tests of a rule file and some failed (or the test
    file itself is invalid); ``output`` is promtool's report."""

    def __init__(self, path: str, output: str) -> None:
        lines = [line.rstrip() for line in output.strip().splitlines() if line.strip()]
        super().__init__(f"`promtool test rules {path}` failed:\n  " + "\n  ".join(lines[-40:]))
        self.path = path
        self.output = output



# --- lookup ----------------------------------------------------------------------------------


def _subclasses(cls: type) -> Iterable[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def error_class(name: str) -> type[LabkitError] | None:
    """The class of this tree (or one of its subclasses elsewhere in the kit) named ``name``."""
    if name == LabkitError.__name__:
        return LabkitError
    return next((c for c in _subclasses(LabkitError) if c.__name__ == name), None)

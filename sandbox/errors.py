"""One exception tree for the whole kit.

``LabkitError`` is the root. Below it:

* ``InfrastructureError``: the machinery is unusable (Docker daemon down, cluster
  unreachable, image missing, port taken, tool not installed). The message says what is
  wrong in one line and ``fix`` names the command that repairs it. ``temporary`` tells a
  caller whether retrying the same call later may succeed (kopf's permanent/temporary split).
* ``InvalidInput``: the caller asked for something that does not exist or is out of range
  (unknown model, index, revision, fault, lab; bad replica count). The message names the
  valid choices.
* ``RolloutFailed``: a new revision never became ready; the previous one keeps serving.
* ``CheckFailed`` (raised by ``graders``): the trainee's sandbox is not in the state a check
  wants. It carries the check result, and prints as a hint, not as a traceback.

Every client exception is wrapped where it is called (``raise ... from e``).
"""

from __future__ import annotations

from collections.abc import Iterable


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


# --- the infrastructure is unusable -------------------------------------------------------


class InfrastructureError(LabkitError):
    """Docker, the cluster, an image or a tool the kit needs is not usable."""

    temporary: bool = False


class DockerUnavailable(InfrastructureError):
    """No Docker daemon answers at the configured address."""

    temporary = True

    def __init__(self, address: str, detail: str = "") -> None:
        reason = f": {detail}" if detail else ""
        super().__init__(
            f"Docker daemon not reachable at {address}{reason}",
            fix="run `make docker` (starts dockerd as root on Debian) or start Docker Desktop,"
            " or point DOCKER_HOST at a running daemon",
        )
        self.address = address


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


class SandboxNotUp(InfrastructureError):
    """The sandbox has not been brought up (or was torn down)."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(
            f"sandbox {sandbox_id} is not up",
            fix="run `labkit sandbox up` (or `sb.up()` in a notebook)",
        )


class NoRevisionDeployed(InfrastructureError):
    """The sandbox is up but nothing is deployed yet."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(
            f"sandbox {sandbox_id} has no revision deployed yet",
            fix="run `labkit deploy --model v1` (or `sb.deploy(model='v1')`)",
        )


class ServiceError(InfrastructureError):
    """The model API answered with an error or not at all."""

    temporary = True


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


class InvalidReplicas(InvalidInput):
    """Replica count outside the allowed range."""

    def __init__(self, value: object, low: int, high: int) -> None:
        super().__init__(f"replicas must be an integer from {low} to {high}, got {value!r}")


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


# --- rollouts ------------------------------------------------------------------------------


class RolloutFailed(LabkitError):
    """A new revision never became ready; the previous revision keeps serving."""

    exit_code = 1

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


# --- grading -------------------------------------------------------------------------------


class CheckFailed(LabkitError, AssertionError):
    """The trainee's sandbox is not in the state a check wants.

    Subclasses ``AssertionError`` so nbgrader counts it as a failed test; its message is
    the check's observed/expected/hint, never a traceback of the kit's internals.
    """

    exit_code = 1

    def __init__(self, result: object) -> None:
        super().__init__(str(result))
        self.result = result


class SteadyStateBroken(LabkitError):
    """A scenario was called resolved, but the fault's steady-state probes do not all hold."""

    exit_code = 1

    def __init__(self, fault: str, broken: Iterable[str], when: str = "now") -> None:
        listed = "; ".join(broken)
        super().__init__(
            f"{fault}: the steady state does not hold {when}: {listed}",
            fix="keep mitigating; `labkit fault status` shows every probe, then resolve again",
        )
        self.fault = fault

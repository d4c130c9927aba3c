"""PromQL, alerts and alerting rules of a sandbox, over HTTP to its Prometheus and Alertmanager.

Tier-independent: a tier only says where the two answer (``Sandbox.prometheus_url`` and
``alertmanager_url``: a published port on 127.0.0.1 on the Docker tier, the API server's
service proxy on the kube tier), how to run ``promtool`` and how to install a rule file.
Everything a notebook, a grader or the CLI asks goes through here::

    sb.query('sum(rate(modelapi_requests_total[1m]))')          # -> [Sample]
    sb.query_range('revision:modelapi_search_latency_seconds:p95_1m', -600)  # -> [Series]
    sb.alerts()                                                  # firing, from Alertmanager
    sb.rules.check("rules/query-drift.yml")                      # promtool check rules
    sb.rules.test("rules/query-drift.yml", "rules/query-drift.test.yml")   # promtool test rules
    sb.rules.load("rules/query-drift.yml")                       # validate, install, reload

A rule file promtool rejects is never installed; one that Prometheus's reload rejects is taken
out again, so the rules loaded before stay as they were.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from .client import shared_http
from .errors import BadQuery, InvalidInput, PrometheusUnavailable, RuleFileRejected, RuleTestsFailed

if TYPE_CHECKING:
    from .api import Sandbox

_NAME_RE = re.compile(r"[^a-z0-9_-]+")
#: The folder (below the rule directories) of the rule files the kit ships.
KIT_RULES_DIR = Path(__file__).parent / "monitoring_rules"


@dataclass(frozen=True)
class Sample:
    """One value of an instant query: its labels, value and evaluation time (epoch seconds)."""

    labels: dict[str, str]
    value: float
    time: float


@dataclass(frozen=True)
class Series:
    """One series of a range query (or of a range selector): labels, times and values."""

    labels: dict[str, str]
    times: list[float]
    values: list[float]

    @property
    def datetimes(self) -> list[dt.datetime]:
        """``times`` as UTC datetimes (what matplotlib puts on a time axis)."""
        return [dt.datetime.fromtimestamp(t, dt.UTC) for t in self.times]


@dataclass(frozen=True)
class Alert:
    """An alert as Alertmanager holds it (``state`` active, suppressed or unprocessed)."""

    name: str
    state: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str = ""


@dataclass(frozen=True)
class RuleState:
    """One loaded rule as Prometheus evaluates it (``/api/v1/rules``)."""

    name: str
    kind: str  # alerting | recording
    query: str
    group: str
    file: str
    duration: float = 0.0
    state: str = ""  # alerting rules: inactive | pending | firing
    health: str = ""
    last_error: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def _epoch(value: float | dt.datetime | None, now: float) -> float:
    """Epoch seconds from an epoch, a datetime, None (now) or a negative offset from now."""
    if value is None:
        return now
    if isinstance(value, dt.datetime):
        return value.timestamp()
    value = float(value)
    return now + value if value <= 0 else value


class PrometheusClient:
    """Prometheus's and Alertmanager's HTTP APIs, errors wrapped into the kit's tree."""

    def __init__(self, url: str, alertmanager_url: str = "", timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None, headers: dict[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.alertmanager_url = alertmanager_url.rstrip("/")
        self.timeout_s = timeout_s
        self.transport = transport  # tests pass an httpx.MockTransport; a grading box its socket's
        self.headers = headers or {}
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        """The kit's shared client, or one kept for the given transport: building one loads a TLS
        context (~20-40 ms of CPU), and the waits poll Prometheus and Alertmanager every second."""
        if self.transport is None:
            return shared_http()
        if self._client is None:
            self._client = httpx.Client(trust_env=False, transport=self.transport)
        return self._client

    def _call(self, base: str, what: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if not base:
            raise PrometheusUnavailable(what, "no address known")
        try:
            return self._http().request(method, base + path, headers=self.headers, timeout=self.timeout_s, **kwargs)
        except httpx.HTTPError as e:
            raise PrometheusUnavailable(what, f"{method} {path}: {type(e).__name__}: {e}") from e

    def _api(self, promql: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        # GET with the query in the URL: it passes the kube tier's service proxy unchanged.
        r = self._call(self.url, "Prometheus", "GET", path, params=params)
        try:
            body = r.json()
        except ValueError:
            raise PrometheusUnavailable("Prometheus", f"{path} answered {r.status_code}: {r.text[:200]}") from None
        if body.get("status") != "success":
            if r.status_code in (400, 422):
                raise BadQuery(promql, str(body.get("error", r.text[:200])))
            raise PrometheusUnavailable("Prometheus", f"{path} answered {r.status_code}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str, at: float | dt.datetime | None = None) -> list[Any]:
        """Instant query: ``[Sample]`` (or ``[Series]`` for a range selector like ``up[1m]``)."""
        data = self._api(promql, "/api/v1/query", {"query": promql, "time": _epoch(at, time.time())})
        kind, result = data["resultType"], data["result"]
        if kind in ("scalar", "string"):
            return [Sample({}, float(result[1]), float(result[0]))]
        if kind == "matrix":
            return [_series(s) for s in result]
        return [Sample(dict(s["metric"]), float(s["value"][1]), float(s["value"][0])) for s in result]

    def query_range(self, promql: str, start: float | dt.datetime, end: float | dt.datetime | None = None,
                    step: float | None = None) -> list[Series]:
        """Range query from ``start`` to ``end`` (epoch, datetime, or seconds before now when
        negative; ``end`` None = now) every ``step`` seconds (default: about 250 points)."""
        now = time.time()
        t0, t1 = _epoch(start, now), _epoch(end, now)
        if t1 <= t0:
            raise InvalidInput(f"query_range: end ({t1:.0f}) must be after start ({t0:.0f})")
        step = float(step) if step else max(1.0, round((t1 - t0) / 250, 1))
        data = self._api(promql, "/api/v1/query_range", {"query": promql, "start": t0, "end": t1, "step": step})
        return [_series(s) for s in data["result"]]

    def rules(self) -> list[RuleState]:
        """Every loaded rule with its state."""
        data = self._api("", "/api/v1/rules", {})
        out = []
        for group in data.get("groups", []):
            for r in group.get("rules", []):
                out.append(RuleState(
                    name=r.get("name", ""), kind=r.get("type", ""), query=r.get("query", ""),
                    group=group.get("name", ""), file=group.get("file", ""),
                    duration=float(r.get("duration") or 0), state=r.get("state", ""),
                    health=r.get("health", ""), last_error=r.get("lastError", ""),
                    labels=dict(r.get("labels") or {})))
        return out

    def reload(self) -> str:
        """Ask Prometheus to re-read its configuration and rules; '' or its error message."""
        r = self._call(self.url, "Prometheus", "POST", "/-/reload")
        return "" if r.status_code == 200 else (r.text.strip() or f"reload answered {r.status_code}")

    def ready(self) -> bool:
        try:
            return self._call(self.url, "Prometheus", "GET", "/-/ready").status_code == 200
        except PrometheusUnavailable:
            return False

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets: labels, health, last scrape and error."""
        r = self._call(self.url, "Prometheus", "GET", "/api/v1/targets", params={"state": "active"})
        return list(r.json()["data"]["activeTargets"])

    def alerts(self, name: str | None = None) -> list[Alert]:
        """Alerts Alertmanager holds now (resolved ones drop out), optionally of one name."""
        params = {"active": "true", "silenced": "false", "inhibited": "false"}
        r = self._call(self.alertmanager_url, "Alertmanager", "GET", "/api/v2/alerts", params=params)
        if r.status_code != 200:
            raise PrometheusUnavailable("Alertmanager", f"/api/v2/alerts answered {r.status_code}")
        out = []
        for a in r.json():
            labels_ = dict(a.get("labels") or {})
            if name is None or labels_.get("alertname") == name:
                out.append(Alert(labels_.get("alertname", ""), (a.get("status") or {}).get("state", ""),
                                 labels_, dict(a.get("annotations") or {}), a.get("startsAt", ""),
                                 a.get("endsAt", "")))
        return sorted(out, key=lambda a: (a.name, a.starts_at))


def _series(raw: dict[str, Any]) -> Series:
    values = raw.get("values") or []
    return Series(dict(raw["metric"]), [float(t) for t, _ in values], [float(v) for _, v in values])


def promtool_problems(output: str) -> list[str]:
    """promtool's own complaints, one per line (its headers and blank lines dropped)."""
    keep = []
    for line in output.splitlines():
        text = line.strip()
        if not text or text.startswith(("Checking ", "SUCCESS", "FAILED:", "Unit Testing:")):
            continue
        keep.append(text)
    return keep


def rule_name(path: str | Path) -> str:
    """The name a rule file is loaded under: its file name without ``.yml``/``.yaml``, cleaned."""
    stem = Path(path).name
    for suffix in (".yml", ".yaml"):
        stem = stem.removesuffix(suffix)
    stem = stem.removesuffix(".rules")
    name = _NAME_RE.sub("-", stem.lower()).strip("-")
    if not name:
        raise InvalidInput(f"rule file {path} has no usable name; use a-z, 0-9, '-' and '_'")
    return name


def _read(path: str | Path, what: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"no {what} at {p} (working directory {Path.cwd()})")
    return p.read_text(encoding="utf-8")


class Rules:
    """The alerting and recording rules of one sandbox (``sb.rules``)."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb

    def check(self, path: str | Path) -> str:
        """``promtool check rules``; promtool's report, or ``RuleFileRejected`` with its problems."""
        text = _read(path, "rule file")
        return self._check_text(str(path), text)

    def _check_text(self, label: str, text: str) -> str:
        code, out = self.sb._promtool(["check", "rules", "rules.yml"], {"rules.yml": text})
        if code != 0:
            raise RuleFileRejected(label, [p.replace("rules.yml", Path(label).name) for p in promtool_problems(out)])
        return out.strip().replace("rules.yml", Path(label).name)

    def test(self, path: str | Path, tests: str | Path) -> str:
        """``promtool test rules`` of the unit tests in ``tests`` against the rules in ``path``
        (the test file's ``rule_files`` is pointed at ``path``); the report, or ``RuleTestsFailed``."""
        rules_text = _read(path, "rule file")
        try:
            suite = yaml.safe_load(_read(tests, "rule test file"))
        except yaml.YAMLError as e:
            raise RuleTestsFailed(str(tests), f"not YAML: {e}") from e
        if not isinstance(suite, dict) or not suite.get("tests"):
            raise RuleTestsFailed(str(tests), "no `tests:` in the file (see `promtool test rules` docs)")
        suite["rule_files"] = ["rules.yml"]
        files = {"rules.yml": rules_text, "tests.yml": yaml.safe_dump(suite, sort_keys=False)}
        code, out = self.sb._promtool(["test", "rules", "tests.yml"], files)
        if code != 0:
            raise RuleTestsFailed(str(tests), out.replace("rules.yml", Path(path).name)
                                  .replace("tests.yml", Path(tests).name))
        return out.strip()

    def load(self, path: str | Path, name: str | None = None) -> list[RuleState]:
        """Validate with promtool, install as ``name`` (default: from the file name) replacing
        a file of that name, and reload Prometheus; returns the rules now loaded from it."""
        text = _read(path, "rule file")
        return self.load_text(text, name or rule_name(path), str(path))

    def load_text(self, text: str, name: str, label: str = "") -> list[RuleState]:
        """``load`` for rules given as text (what graders and the kit's own rules use)."""
        label = label or name
        name = rule_name(name)
        self._check_text(label, text)
        previous = self.sb._rule_file(name)
        self.sb._install_rule_file(name, text)
        error = self.sb._reload_prometheus()
        if error:
            self.sb._install_rule_file(name, previous)
            self.sb._reload_prometheus()
            raise RuleFileRejected(label, [error], "Prometheus reload")
        return [r for r in self.sb.prometheus.rules() if Path(r.file).name == f"{name}.yml"]

    def unload(self, name: str) -> None:
        """Remove a loaded rule file (by its name) and reload."""
        self.sb._install_rule_file(rule_name(name), None)
        error = self.sb._reload_prometheus()
        if error:
            raise PrometheusUnavailable("Prometheus", f"reload after removing {name}: {error}")

    def source(self, name: str) -> str | None:
        """The text of a loaded rule file, as Prometheus reads it (None if not loaded)."""
        return self.sb._rule_file(rule_name(name))

    def loaded(self) -> list[RuleState]:
        """Every rule Prometheus evaluates now (the kit's and the trainee's), with its state."""
        return self.sb.prometheus.rules()

    def state(self, alert: str) -> str:
        """``inactive``, ``pending`` or ``firing`` for a loaded alerting rule; '' if not loaded."""
        states = [r.state for r in self.loaded() if r.kind == "alerting" and r.name == alert]
        for s in ("firing", "pending", "inactive"):
            if s in states:
                return s
        return ""


class MonitoringSurface:
    """What a lab calls on a sandbox's monitoring, for every kind of sandbox: both tiers (which
    say where Prometheus and Alertmanager answer, and run promtool and install rule files) and
    the grading box's remote view (which reaches them through its control endpoint)."""

    prometheus_url: str
    alertmanager_url: str

    @property
    def prometheus(self) -> PrometheusClient:
        return PrometheusClient(self.prometheus_url, self.alertmanager_url)

    def query(self, promql: str, at: Any = None) -> list[Sample]:
        """PromQL instant query against the sandbox's Prometheus (``BadQuery`` on a typo)."""
        return self.prometheus.query(promql, at)

    def query_range(self, promql: str, start: Any, end: Any = None, step: float | None = None) -> list[Series]:
        """PromQL range query; ``start``/``end`` are epochs, datetimes or negative seconds from now."""
        return self.prometheus.query_range(promql, start, end, step)

    def alerts(self, name: str | None = None) -> list[Alert]:
        """Alerts firing now, as the sandbox's Alertmanager holds them."""
        return self.prometheus.alerts(name)

    @property
    def rules(self) -> Rules:
        """The sandbox's rule files: ``check``, ``test``, ``load``, ``unload``, ``loaded``."""
        return Rules(self)  # type: ignore[arg-type]

    def _reload_prometheus(self) -> str:
        """Make Prometheus re-read its rules; '' or its error (tier hook of ``rules``)."""
        return self.prometheus.reload()


def kit_rule_files() -> dict[str, str]:
    """The rule files the kit ships (``sandbox/monitoring_rules/*.rules.yml``), by name."""
    return {rule_name(p): p.read_text(encoding="utf-8") for p in sorted(KIT_RULES_DIR.glob("*.rules.yml"))}


__all__ = ["Alert", "MonitoringSurface", "PrometheusClient", "RuleState", "Rules", "Sample", "Series", "kit_rule_files",
           "promtool_problems", "rule_name"]

"""Scoped access to a sandbox for a graded kernel: the control endpoint (trusted side), the
``RemoteSandbox`` a box's ``connect()`` returns, the policy and the audit log."""

from __future__ import annotations

from .audit import AuditLog, AuditRecord, read_audit
from .client import RemoteSandbox, control_transport
from .policy import Refused

__all__ = ["AuditLog", "AuditRecord", "read_audit", "RemoteSandbox", "control_transport", "Refused"]

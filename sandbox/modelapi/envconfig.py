"""One reader of environment settings for the three service processes (model API, provider,
gateway): a frozen dataclass whose fields name their variable in ``metadata["env"]``.

    @dataclass(frozen=True)
    class GatewayConfig(EnvConfig):
        port: int = env_field(8000, "GATEWAY_PORT")

    GatewayConfig.from_env({"GATEWAY_PORT": "9000"}).port == 9000

An unset or blank variable takes the field's default; a value is converted by the field's type
(``str``, ``int``, ``float``, ``Path``); one that does not convert is a ``ConfigError`` naming the
variable. Checks of ranges and choices stay in each class's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T", bound="EnvConfig")
_CONVERT: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float, "Path": Path}


class ConfigError(ValueError):
    """An environment variable has an invalid value (the message names it)."""


def env_field(default: Any, var: str, *, clean: Callable[[str], str] = str.strip) -> Any:
    """A dataclass field read from ``var``; ``clean`` normalises the raw text first."""
    return dataclasses.field(default=default, metadata={"env": var, "clean": clean})


class EnvConfig:
    """Mixin of the service configurations: ``from_env`` builds one from the environment."""

    @classmethod
    def from_env(cls: type[T], env: Mapping[str, str] | None = None) -> T:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            var = f.metadata.get("env")
            raw = f.metadata["clean"](env.get(var, "")) if var else ""
            if not raw:
                continue
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "str")
            try:
                values[f.name] = _CONVERT[kind](raw)
            except ValueError:
                raise ConfigError(f"{var}={raw!r} is not a valid {kind}") from None
        return cls(**values)

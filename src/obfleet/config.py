"""Settings read from the environment (the stable interface: OBFLEET_* variables)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from obfleet.logs import check_format as check_log_format

# PyMySQL refuses a connect_timeout outside (0, one year]: every health login would then fail.
MAX_HEALTH_TIMEOUT_S = 31_536_000


def _default_data_dir() -> Path:
    return Path(os.environ.get("OBFLEET_DATA_DIR") or Path.home() / ".obfleet")


def _seconds(
    env: Mapping[str, str], name: str, default: float, valid: Callable[[float], bool], rule: str
) -> float:
    """A number of seconds from `name`, refused (ValueError naming the variable) unless finite
    and `valid`."""
    text = env.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds {rule}, not {text!r}") from None
    if not (math.isfinite(value) and valid(value)):
        raise ValueError(f"{name} must be a number of seconds {rule}, not {text!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A positive whole number from `name`, refused (ValueError naming the variable) otherwise."""
    text = env.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        raise ValueError(f"{name} must be a whole number > 0, not {text!r}")
    return int(text)


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    """1/0 (or true/false, on/off) from `name`, refused (ValueError naming the variable)."""
    text = env.get(name)
    if text is None or not text.strip():
        return default
    value = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False}.get(
        text.strip().lower()
    )
    if value is None:
        raise ValueError(f"{name} must be 1 or 0, not {text!r}")
    return value


def _networks(env: Mapping[str, str], name: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """Comma-separated CIDRs from `name`, refused (ValueError naming the variable) if one is not."""
    networks = []
    for text in env.get(name, "").split(","):
        if not text.strip():
            continue
        try:
            networks.append(ip_network(text.strip()))
        except ValueError as exc:
            raise ValueError(f"{name} must list networks like 10.0.0.0/8: {exc}") from None
    return tuple(networks)


@dataclass(frozen=True)
class Settings:
    """Everything obfleet reads from its environment, resolved once at start."""

    data_dir: Path = field(default_factory=_default_data_dir)
    database_url: str = ""
    admin_password: str | None = None
    # The first admin's password given as an argon2 hash (`obfleet hash-password`), so the
    # plain password need not sit in the service's environment. Wins over admin_password.
    admin_password_hash: str | None = None
    secret_key: str | None = None
    advertise_url: str | None = None
    max_upload_bytes: int = 2 * 1024**3
    engine_concurrency: int = 16
    # How many worker threads run request handlers at once (None: by the metadb, see
    # obfleet.api.threads).
    request_threads: int | None = None
    # How long a replica's claim on a running subtask lasts without a heartbeat before another
    # replica takes the subtask over (after a crash).
    engine_lease_seconds: float = 30.0
    # How long a silent host is waited for over SSH: to open a connection (TCP, handshake,
    # login), and on an open connection whose keepalives go unanswered before it is declared
    # lost (the step using it then fails instead of hanging).
    ssh_timeout_s: float = 15.0
    # Every recorded OBProxy is checked with a root@proxysys login this often (0: never), each
    # login given this long to answer (monitor/health.py).
    health_interval_s: float = 30.0
    health_timeout_s: float = 3.0
    # Failed password logins per (user, client address) before that pair is locked, and for
    # how long (security/throttle.py).
    login_max_failures: int = 5
    login_lock_seconds: float = 300.0
    # Who may register with the config server besides loopback and the known root servers,
    # the token every registration must then carry (None: none), and how many clusters may
    # be registered (obfleet.configserver.access).
    configserver_allow: tuple[IPv4Network | IPv6Network, ...] = ()
    configserver_token: str | None = None
    configserver_max_clusters: int = 1000
    # How long the config server trusts the config-server generation it read without reading it
    # again while this process has not moved it: the most a change committed through another
    # replica (or by another process on a SQLite file) waits to be in its answers; 0: none
    # (one metadb lookup per answer). obfleet.configserver.cache.
    configserver_staleness_s: float = 1.0
    # The server log: "text" or "json" (one object a line), and its level (obfleet.logs).
    log_format: str = "text"
    # /metrics and the audit trail can be turned off (the bench measures what they cost).
    metrics_enabled: bool = True
    audit_enabled: bool = True

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'obfleet.db'}"

    @property
    def packages_dir(self) -> Path:
        return self.data_dir / "packages"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            data_dir=_default_data_dir(),
            database_url=env.get("OBFLEET_DATABASE_URL", ""),
            admin_password=env.get("OBFLEET_ADMIN_PASSWORD") or None,
            admin_password_hash=env.get("OBFLEET_ADMIN_PASSWORD_HASH") or None,
            secret_key=env.get("OBFLEET_SECRET_KEY") or None,
            advertise_url=env.get("OBFLEET_ADVERTISE_URL") or None,
            max_upload_bytes=int(env.get("OBFLEET_MAX_UPLOAD_BYTES", 2 * 1024**3)),
            engine_concurrency=int(env.get("OBFLEET_ENGINE_CONCURRENCY", 16)),
            request_threads=_count(env, "OBFLEET_REQUEST_THREADS", 0) or None,
            engine_lease_seconds=float(env.get("OBFLEET_ENGINE_LEASE_SECONDS", 30)),
            ssh_timeout_s=float(env.get("OBFLEET_SSH_TIMEOUT", 15)),
            health_interval_s=_seconds(
                env, "OBFLEET_HEALTH_INTERVAL", 30.0, lambda s: s >= 0, ">= 0 (0: no checks)"
            ),
            health_timeout_s=_seconds(
                env,
                "OBFLEET_HEALTH_TIMEOUT",
                3.0,
                lambda s: 0 < s <= MAX_HEALTH_TIMEOUT_S,
                f"> 0 and <= {MAX_HEALTH_TIMEOUT_S}",
            ),
            login_max_failures=_count(env, "OBFLEET_LOGIN_MAX_FAILURES", 5),
            login_lock_seconds=_seconds(
                env, "OBFLEET_LOGIN_LOCK_SECONDS", 300.0, lambda s: s > 0, "> 0"
            ),
            configserver_allow=_networks(env, "OBFLEET_CONFIGSERVER_ALLOW"),
            configserver_token=env.get("OBFLEET_CONFIGSERVER_TOKEN") or None,
            configserver_max_clusters=_count(env, "OBFLEET_CONFIGSERVER_MAX_CLUSTERS", 1000),
            configserver_staleness_s=_seconds(
                env,
                "OBFLEET_CONFIGSERVER_STALENESS",
                1.0,
                lambda s: s >= 0,
                ">= 0 (0: no staleness)",
            ),
            log_format=check_log_format(env.get("OBFLEET_LOG_FORMAT") or "text"),
            metrics_enabled=_switch(env, "OBFLEET_METRICS", True),
            audit_enabled=_switch(env, "OBFLEET_AUDIT", True),
        )

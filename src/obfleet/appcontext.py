"""What a running obfleet holds: settings, the metadb, the secret box and the task engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from obfleet.config import Settings
from obfleet.hosts.ssh import SshPool
from obfleet.monitor.metrics import Metrics
from obfleet.security.datadir import secure_data_dir
from obfleet.security.secrets import SecretBox, load_or_create_key
from obfleet.store.db import Database


@dataclass
class AppContext:
    settings: Settings
    db: Database
    secrets: SecretBox
    # One SSH connection per host, shared by every task that touches it.
    ssh: SshPool = field(default_factory=SshPool)
    # Set by the service process once the task engine runs (none in CLI-only use).
    engine: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    # This app's metrics (None when OBFLEET_METRICS=0).
    metrics: Metrics | None = None

    @classmethod
    def open(cls, settings: Settings) -> AppContext:
        secure_data_dir(settings.data_dir)
        key = load_or_create_key(settings.data_dir, settings.secret_key)
        return cls(
            settings=settings,
            db=Database(settings.effective_database_url),
            secrets=SecretBox(key),
            ssh=SshPool.with_timeout(settings.ssh_timeout_s),
            metrics=Metrics() if settings.metrics_enabled else None,
        )

    def close(self) -> None:
        self.db.dispose()

"""Settings, read once from the environment into a typed object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from server.mail import SmtpSettings

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Timings:
    """How fast workers notice trouble. The defaults put a delivery whose worker died
    back on a queue within 2 minutes: its claim is stale `job_timeout + claim_grace`
    (50 s) after it was taken, and the sweeper runs every `sweep_every` (60 s)."""

    job_timeout: int = 40
    claim_grace: int = 10
    sweep_every: int = 60
    maintenance_every: int = 30  # RQ's own default is 600 s
    max_backoff: float = 30.0

    @property
    def stale_after(self) -> int:
        return self.job_timeout + self.claim_grace

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Timings:
        values = os.environ if env is None else env
        default = cls()
        return cls(
            job_timeout=int(values.get("LOADBAY_JOB_TIMEOUT", default.job_timeout)),
            claim_grace=int(values.get("LOADBAY_CLAIM_GRACE", default.claim_grace)),
            sweep_every=int(values.get("LOADBAY_SWEEP_INTERVAL", default.sweep_every)),
            maintenance_every=int(
                values.get("LOADBAY_WORKER_MAINTENANCE_INTERVAL", default.maintenance_every)
            ),
            max_backoff=float(values.get("LOADBAY_REDIS_MAX_BACKOFF", default.max_backoff)),
        )


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str | None
    blob_dir: Path
    assets_dir: Path
    master_key_file: Path
    allow_private_networks: tuple[str, ...] = ()
    webhook_ca_file: str | None = None
    retention_days: int = 30
    passthrough_ttl: int = 3600  # seconds a passthrough import's sealed batches wait in Redis
    max_batch_bytes: int = 64 * 1024 * 1024
    max_file_bytes: int = 1024 * 1024 * 1024
    # A headless CSV is read, validated and uploaded this many bytes at a time: its memory.
    headless_part_bytes: int = 16 * 1024 * 1024
    max_import_rows: int = 10_000_000
    imports_per_minute: int = 60  # imports created per minute per publishable key
    body_timeout: float = 30.0
    trusted_proxies: tuple[str, ...] = ()
    blob_s3_bucket: str | None = None
    blob_s3_prefix: str = ""
    demo: bool = False
    public_url: str = "https://127.0.0.1:8443"
    queue_name: str = "deliveries"
    timings: Timings = field(default_factory=Timings)
    smtp: SmtpSettings | None = None  # invitations; LOADBAY_SMTP_* (server.mail)

    def private_data_dir(self) -> Path:
        """The data directory, created 0700 (or narrowed to it): it holds the metadata
        database, the AOF, sealed blobs and, unless moved, the master key."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.data_dir.stat().st_mode & 0o077:
            self.data_dir.chmod(0o700)
        return self.data_dir

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, *, demo: bool = False) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("LOADBAY_DATA_DIR", ".loadbay")).resolve()
        allow = env.get("LOADBAY_ALLOW_PRIVATE_NETWORKS", "")
        return cls(
            data_dir=data_dir,
            database_url=env.get("DATABASE_URL", f"sqlite:///{data_dir / 'loadbay.db'}"),
            redis_url=env.get("REDIS_URL") or None,
            blob_dir=Path(env.get("LOADBAY_BLOB_DIR", str(data_dir / "blobs"))),
            assets_dir=Path(env.get("LOADBAY_ASSETS_DIR", str(REPO_ROOT / "build" / "assets"))),
            master_key_file=Path(env.get("LOADBAY_MASTER_KEY_FILE", str(data_dir / "master.key"))),
            allow_private_networks=tuple(n.strip() for n in allow.split(",") if n.strip()),
            webhook_ca_file=env.get("LOADBAY_WEBHOOK_CA_FILE") or None,
            retention_days=int(env.get("LOADBAY_RETENTION_DAYS", "30")),
            passthrough_ttl=int(env.get("LOADBAY_PASSTHROUGH_TTL", "3600")),
            blob_s3_bucket=env.get("LOADBAY_BLOB_S3_BUCKET") or None,
            blob_s3_prefix=env.get("LOADBAY_BLOB_S3_PREFIX", ""),
            max_file_bytes=int(env.get("LOADBAY_MAX_FILE_BYTES", str(1024**3))),
            headless_part_bytes=int(env.get("LOADBAY_HEADLESS_PART_BYTES", str(16 * 1024**2))),
            max_import_rows=int(env.get("LOADBAY_MAX_IMPORT_ROWS", "10000000")),
            imports_per_minute=int(env.get("LOADBAY_IMPORTS_PER_MINUTE", "60")),
            body_timeout=float(env.get("LOADBAY_BODY_TIMEOUT", "30")),
            trusted_proxies=tuple(
                p.strip() for p in env.get("LOADBAY_TRUSTED_PROXIES", "").split(",") if p.strip()
            ),
            timings=Timings.from_env(env),
            smtp=SmtpSettings.from_env(env),
            demo=demo,  # only `loadbay demo` mounts the demo's pages, never the environment
            public_url=env.get("LOADBAY_PUBLIC_URL", "https://127.0.0.1:8443").rstrip("/"),
        )

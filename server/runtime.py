"""The wired-up pieces one process uses: built once from Settings, passed explicitly."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from destinations import DestinationContext
from destinations.network import NetworkPolicy
from server import db
from server.blobs import BlobStore, LocalBlobStore, S3BlobStore
from server.crypto import load_or_create_master_key
from server.queue import JobQueue, job_queue
from server.settings import Settings
from server.vault import Vault


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    sessions: sessionmaker[Session]
    vault: Vault
    blobs: BlobStore
    destination_context: DestinationContext

    @functools.cached_property
    def queue(self) -> JobQueue:
        """The job queues, connected on first use (the embedded Redis starts then)."""
        return job_queue(self.settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        settings.private_data_dir()
        engine = db.make_engine(settings.database_url)
        return cls(
            settings=settings,
            sessions=db.make_sessionmaker(engine),
            vault=Vault(load_or_create_master_key(settings.master_key_file)),
            blobs=(
                S3BlobStore(settings.blob_s3_bucket, settings.blob_s3_prefix)
                if settings.blob_s3_bucket
                else LocalBlobStore(settings.blob_dir)
            ),
            destination_context=DestinationContext(
                policy=NetworkPolicy.from_strings(settings.allow_private_networks),
                ca_file=settings.webhook_ca_file,
                statement_timeout=settings.timings.job_timeout * 0.75,
            ),
        )

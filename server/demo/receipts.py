"""What the demo's receiver was sent: its own SQLite file beside the demo's data, with its
own tables (never in the product's schema). A receipt goes when its import's data does."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, String, delete, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from server import db


class DemoBase(DeclarativeBase):
    type_annotation_map = {dt.datetime: db.UTCDateTime, dict[str, Any]: JSON}


class Receipt(DemoBase):
    __tablename__ = "receipts"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    import_id: Mapped[str] = mapped_column(String(40), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=db.utcnow)
    headers: Mapped[dict[str, Any]]
    body: Mapped[str]


@functools.cache
def _sessions(path: Path) -> sessionmaker[Session]:
    engine = db.make_engine(f"sqlite:///{path}")  # created 0600, secure_delete on
    DemoBase.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


class Receipts:
    def __init__(self, path: Path) -> None:
        self._sessions = _sessions(path)

    def add(self, import_id: str, headers: dict[str, str], body: str) -> None:
        with self._sessions.begin() as session:
            session.add(Receipt(import_id=import_id, headers=headers, body=body))

    def all(self) -> list[dict[str, Any]]:
        with self._sessions() as session:
            rows = session.scalars(select(Receipt).order_by(Receipt.id)).all()
            return [
                {
                    "import_id": r.import_id,
                    "received_at": r.received_at.isoformat(),
                    "headers": r.headers,
                    "body": r.body,
                }
                for r in rows
            ]

    def newest(self, limit: int) -> tuple[int, list[tuple[int, str]]]:
        """How many receipts there are, and (id, received_at) of the newest `limit`: the
        page reads a body only for what it shows (an import of 1M rows is 16 bodies of
        about 9 MB each)."""
        with self._sessions() as session:
            count = session.scalar(select(func.count(Receipt.id))) or 0
            rows = session.execute(
                select(Receipt.id, Receipt.received_at).order_by(Receipt.id.desc()).limit(limit)
            ).all()
        return int(count), [(int(i), at.isoformat()) for i, at in rows]

    def one(self, receipt_id: int) -> dict[str, Any] | None:
        with self._sessions() as session:
            r = session.get(Receipt, receipt_id)
            if r is None:
                return None
            return {"received_at": r.received_at.isoformat(), "headers": r.headers, "body": r.body}

    def import_ids(self) -> set[str]:
        with self._sessions() as session:
            return set(session.scalars(select(Receipt.import_id).distinct()))

    def forget(self, import_ids: set[str]) -> None:
        """Delete the receipts of these imports (their data is gone)."""
        if import_ids:
            with self._sessions.begin() as session:
                session.execute(delete(Receipt).where(Receipt.import_id.in_(import_ids)))

"""Receiving a batch: bounds, decoding, re-validation, cross-batch uniqueness, storing.

The browser is not a trust boundary: every batch is decoded defensively (no compressed
record batches, no dictionaries, the whole stream validated before any cell is read),
validated again with the same `pipeline` code the browser ran, typed and sealed.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring as _json_string  # what json.dumps writes
from typing import Any

import arro3.core as ac
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.errors import MappingError
from pipeline.policy import Judged, judge
from pipeline.schema import RowPolicy
from pipeline.session import ROW_COLUMN
from pipeline.template import ERRORS_FIELD, Template, parse_template
from pipeline.validation import EarlierBatches, coerce, validate_and_coerce
from server import batches, db, import_views, passthrough
from server.errors import Conflict, Invalid, TooLarge
from server.import_views import ErrorCount
from server.imports import ImportStatus, authorise, data_state
from server.runtime import Runtime
from server.unique_sets import SeenInSets

MAX_INT = 2**31 - 1  # PostgreSQL's integer: batch numbers and row numbers are stored as one
ERRORS_ANSWERED = 100
RECEIVED_LISTED = 1000  # batch numbers one answer of `received` names
_LOOKUP_CHUNK = 5000  # digests per lookup: within SQLite's and PostgreSQL's bound parameters

# Arrow IPC Message flatbuffer: header_type is field 1, header field 2; MessageHeader
# RecordBatch = 3, DictionaryBatch = 2; RecordBatch.compression is field 3.
_DICTIONARY_BATCH, _RECORD_BATCH = 2, 3


def inflate(body: bytes, limit: int) -> bytes:
    """gunzip a request body, stopping at `limit` bytes: a gzip bomb costs us nothing."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise Invalid(f"The batch is not valid gzip: {exc}.") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"A batch may hold at most {limit} bytes uncompressed.")
    if not inflater.eof:
        raise Invalid("The batch's gzip stream is truncated.")
    if inflater.unused_data:  # a second gzip member or junk: refused, never silently dropped
        raise Invalid("The batch has data after its gzip stream.")
    return data


def check_position(seq: int, first_row: int) -> None:
    if not 0 <= seq <= MAX_INT:
        raise Invalid(f"The batch number must be between 0 and {MAX_INT}.")
    if not 1 <= first_row <= MAX_INT:
        raise Invalid(f"first_row must be between 1 and {MAX_INT}.")


def receive_batch(
    rt: Runtime,
    import_id: str,
    token: str,
    seq: int,
    first_row: int,
    body: bytes,
    left_out: int = 0,
) -> int:
    """Store one batch; returns its row count. Re-sending the same batch is harmless.

    `left_out`: the invalid rows the browser left out before this batch (valid-only); the
    rows the server's own re-check leaves out are added to it.

    The blob is written under a key of its own first and counts only once its row has
    committed; a losing concurrent attempt deletes its blob and is answered as a re-send
    (same content) or a conflict (other content).
    """
    check_position(seq, first_row)
    if len(body) > rt.settings.max_batch_bytes:
        raise TooLarge(f"A batch may hold at most {rt.settings.max_batch_bytes} bytes.")
    with rt.sessions() as session:
        imp = authorise(session, import_id, token)
        template_row = session.get(db.Template, imp.template_id)
        org = session.get(db.Organisation, imp.org_id)
        assert template_row is not None and org is not None  # noqa: S101 - foreign keys
        gone = data_state(session, imp)
        if gone is not None:
            raise gone.error()
        if imp.status != ImportStatus.UPLOADING:
            raise Conflict(f"Import {import_id} was already submitted.")
        key = batches.data_key(rt, org, imp)
        digest = batches.content_digest(key, body)
        answered = _earlier_answer(rt, session, imp, seq, digest)
        if answered is not None:
            return answered
        template = parse_template(template_row.schema)
        policy = template.row_policy(org.invalid_row_policy)
        _check_row_cap(rt, session, import_id, 0)
    blob_key: str | None = None
    earlier: SeenValues | SeenInSets | None = None
    try:
        with rt.sessions.begin() as session:
            earlier = _earlier_batches(rt, session, imp, key)
            typed, dropped = checked_typed_batch(body, template, first_row, earlier, policy)
            _check_row_cap(rt, session, import_id, typed.num_rows)
            blob_key = batches.store(rt, imp, seq, key, typed, digest)
            if isinstance(earlier, SeenInSets):
                earlier.settle(session, seq)
            session.add(
                db.Batch(
                    import_id=import_id,
                    seq=seq,
                    first_row=first_row,
                    row_count=typed.num_rows,
                    left_out=min(left_out + dropped, MAX_INT),
                    digest=batches.recorded_digest(imp, digest),
                    blob_key=blob_key,
                )
            )
            session.flush()
            if isinstance(earlier, SeenValues):
                earlier.record()
        return int(typed.num_rows)
    except RowsRejected as exc:  # the import's error summary counts it (codes and fields)
        import_views.record_rejection(rt, import_id, seq, exc.found)
        raise
    except IntegrityError as exc:  # a concurrent upload of this import got there first
        _discard(rt, imp, blob_key)
        if isinstance(earlier, SeenInRedis):
            earlier.undo()
        with rt.sessions() as session:
            answered = _earlier_answer(rt, session, imp, seq, digest)
        if answered is not None:
            return answered
        raise Conflict(
            f"Batch {seq} met another upload of this import at the same moment; send it again."
        ) from exc
    except BaseException:
        _discard(rt, imp, blob_key)
        if isinstance(earlier, SeenInRedis):
            earlier.undo()
        raise


def _earlier_batches(
    rt: Runtime, session: Session, imp: db.Import, key: bytes
) -> SeenValues | SeenInSets:
    """Where the import's earlier batches' unique values are: Redis for a passthrough
    import, one array a batch for a stored one (a row a value, `SeenValues`, for an import
    whose upload began before those arrays)."""
    if passthrough.is_passthrough(imp):
        return SeenInRedis(rt, imp, key)
    began_before = session.scalar(
        select(db.UniqueValue.first_row).where(db.UniqueValue.import_id == imp.id).limit(1)
    )
    if began_before is not None:
        return SeenValues(session, imp.id, key)
    return SeenInSets(session, imp.id, key)


@dataclass(frozen=True)
class Received:
    """Which batches of an import the server holds, from `start`, for resuming an upload."""

    status: ImportStatus
    batches: list[int]
    next_start: int | None  # ask again from here: more may follow

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "batches": self.batches, "next": self.next_start}


def received(rt: Runtime, import_id: str, token: str, start: int) -> Received:
    with rt.sessions() as session:
        imp = authorise(session, import_id, token)
        seqs = list(
            session.scalars(
                select(db.Batch.seq)
                .where(db.Batch.import_id == import_id, db.Batch.seq >= start)
                .order_by(db.Batch.seq)
                .limit(RECEIVED_LISTED + 1)
            )
        )
        more = seqs[RECEIVED_LISTED] if len(seqs) > RECEIVED_LISTED else None
        return Received(ImportStatus(imp.status), seqs[:RECEIVED_LISTED], more)


def _check_row_cap(rt: Runtime, session: Session, import_id: str, adding: int) -> None:
    """TooLarge once the import would hold more than `max_import_rows` rows. Two batches
    racing may pass it together: the overshoot is bounded by the uploads held at once."""
    cap = rt.settings.max_import_rows
    held = session.scalar(
        select(func.coalesce(func.sum(db.Batch.row_count), 0)).where(
            db.Batch.import_id == import_id
        )
    )
    total = int(held or 0) + adding
    if total > cap or (adding == 0 and total >= cap):
        raise TooLarge(
            f"An import may hold at most {cap:,} rows and this one would hold {total:,}; "
            "split the file and import the parts one after another."
        )


def _earlier_answer(
    rt: Runtime, session: Session, imp: db.Import, seq: int, digest: str
) -> int | None:
    existing = session.scalar(
        select(db.Batch).where(db.Batch.import_id == imp.id, db.Batch.seq == seq)
    )
    if existing is None:
        return None
    if not hmac.compare_digest(batches.digest_of(rt, imp, existing), digest):
        raise Conflict(f"Batch {seq} was already received with different content.")
    return int(existing.row_count)


def _discard(rt: Runtime, imp: db.Import, blob_key: str | None) -> None:
    if blob_key is not None:
        batches.discard(rt, imp, blob_key)


class RowsRejected(Invalid):
    """Cells of a batch failed the template's rules; `found` counts them by code and field."""

    def __init__(self, message: str, *, details: Any, found: list[ErrorCount]) -> None:
        super().__init__(message, details=details)
        self.found = found


class SeenValues:
    """`EarlierBatches` for one import, kept in the metadata database as keyed digests.

    A value is stored as HMAC-SHA256 (truncated to 128 bits) under a key derived from the
    import's data key, with the target ("unique:<field>" or "primaryKey") inside, and the
    row it first appeared in; never the value. What a batch adds is written by `record`,
    only once the batch has passed.
    """

    def __init__(self, session: Session, import_id: str, data_key: bytes) -> None:
        self._session = session
        self._import_id = import_id
        self._key = hmac.new(data_key, b"loadbay/unique-values", hashlib.sha256).digest()
        self._pending: dict[bytes, int] = {}

    def first_rows(self, target: str, values: Sequence[str], rows: list[int]) -> list[int | None]:
        digests = self._digests(target, values)
        stored: dict[bytes, int] = {}
        for start in range(0, len(digests), _LOOKUP_CHUNK):
            stored.update(self._stored(digests[start : start + _LOOKUP_CHUNK]))
        if not stored:  # the usual case: nothing this batch holds was met before
            self._pending.update(zip(digests, rows, strict=True))
            return [None] * len(digests)
        found = [stored.get(d) for d in digests]
        new = zip(digests, rows, found, strict=True)
        self._pending.update((d, r) for d, r, f in new if f is None)
        return found

    def _stored(self, digests: list[bytes]) -> dict[bytes, int]:
        marks = ", ".join([self._mark] * len(digests))
        return {
            bytes(digest): int(first_row)
            for digest, first_row in self._connection.exec_driver_sql(
                f"SELECT digest, first_row FROM unique_values "  # noqa: S608 - marks only
                f"WHERE import_id = {self._mark} AND digest IN ({marks})",
                (self._import_id, *digests),
            )
        }

    def record(self) -> None:
        if self._pending:
            mark = self._mark
            self._connection.exec_driver_sql(
                f"INSERT INTO unique_values (import_id, digest, first_row) "  # noqa: S608
                f"VALUES ({mark}, {mark}, {mark})",
                [(self._import_id, d, r) for d, r in self._pending.items()],
            )
            self._pending = {}

    @property
    def _connection(self) -> Connection:
        return self._session.connection()

    @property
    def _mark(self) -> str:
        """The driver's parameter mark: these statements skip SQLAlchemy's compiler and
        per-value type processing (a batch can hold 65,536 values; that cost was most of
        an upload's)."""
        return "?" if self._connection.dialect.paramstyle == "qmark" else "%s"

    def _digests(self, target: str, values: Sequence[str]) -> list[bytes]:
        """HMAC-SHA256 of `json.dumps([target, value], ensure_ascii=False)`, truncated: the
        same bytes as ever, with the key and the shared prefix hashed once, not per value."""
        prefix = hmac.new(self._key, f"[{_json_string(target)}, ".encode(), hashlib.sha256)
        out = []
        for value in values:
            h = prefix.copy()
            h.update(f"{_json_string(value)}]".encode())
            out.append(h.digest()[:16])
        return out


class SeenInRedis(SeenValues):
    """`SeenValues` for a passthrough import: the same digests, kept in Redis beside its
    batches (expiring with them), so the metadata database holds none."""

    def __init__(self, rt: Runtime, imp: db.Import, data_key: bytes) -> None:
        # No session: every lookup and record goes to Redis (`_stored`, `record`).
        super().__init__(None, imp.id, data_key)  # type: ignore[arg-type]
        self._rt, self._imp = rt, imp
        self._recorded: list[bytes] = []

    def _stored(self, digests: list[bytes]) -> dict[bytes, int]:
        return passthrough.seen_rows(self._rt, self._imp, digests)

    def record(self) -> None:
        """Add this batch's values; a concurrent batch that added one first is a Conflict
        (as the database's primary key makes it for a stored import)."""
        if self._pending:
            self._recorded = passthrough.record_seen(self._rt, self._imp, self._pending)
            self._pending = {}

    def undo(self) -> None:
        passthrough.forget_seen(self._rt, self._imp, self._recorded)
        self._recorded = []


def decode_ipc(body: bytes) -> pa.Table:
    """An Arrow IPC stream as a table, refused unless it is plain and whole.

    Every message is looked at before any is decoded: compressed record or dictionary
    batches are refused (their buffers decompress to whatever size they declare: a few
    hundred bytes could ask for gigabytes; the browser never sends them). Every buffer of
    an uncompressed stream lies inside the body, so decoding costs no more than the body.
    The whole table is then validated (offsets, UTF-8) before any cell is read.
    """
    try:
        reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(body))
        while True:
            try:
                message = reader.read_next_message()
            except StopIteration:
                break
            if message is None:
                break
            if message.type != "schema" and _compressed(message.metadata.to_pybytes()):
                raise Invalid(
                    "The batch's Arrow record batches are compressed; send them uncompressed "
                    "(gzip the request body instead)."
                )
        table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
        table.validate(full=True)
    except Invalid:
        raise
    except (pa.ArrowException, OSError, ValueError, struct.error, IndexError) as exc:
        raise Invalid(f"The batch is not an Arrow IPC stream: {exc}") from exc
    return table


def _compressed(metadata: bytes) -> bool:
    """Whether one IPC message's record batch (or a dictionary batch's) declares body
    compression, read from its flatbuffer without decoding anything."""
    message = _table(metadata, struct.unpack_from("<I", metadata, 0)[0])
    kind = _field_u8(metadata, message, 1)
    header = _field_table(metadata, message, 2)
    if header is not None and kind == _DICTIONARY_BATCH:
        header = _field_table(metadata, header, 1)  # DictionaryBatch.data: a RecordBatch
    elif kind != _RECORD_BATCH:
        return False
    return header is not None and _field_offset(metadata, header, 3) != 0


def _table(buf: bytes, pos: int) -> tuple[int, int]:
    vtable = pos - struct.unpack_from("<i", buf, pos)[0]
    return pos, vtable


def _field_offset(buf: bytes, table: tuple[int, int], index: int) -> int:
    pos, vtable = table
    size = struct.unpack_from("<H", buf, vtable)[0]
    slot = 4 + 2 * index
    return struct.unpack_from("<H", buf, vtable + slot)[0] if slot < size else 0


def _field_u8(buf: bytes, table: tuple[int, int], index: int) -> int:
    offset = _field_offset(buf, table, index)
    return buf[table[0] + offset] if offset else 0


def _field_table(buf: bytes, table: tuple[int, int], index: int) -> tuple[int, int] | None:
    offset = _field_offset(buf, table, index)
    if not offset:
        return None
    at = table[0] + offset
    return _table(buf, at + struct.unpack_from("<I", buf, at)[0])


def checked_typed_batch(
    body: bytes,
    template: Template,
    first_row: int,
    earlier: EarlierBatches | None = None,
    policy: RowPolicy = RowPolicy.REJECT,
) -> tuple[pa.Table, int]:
    """Prepare, validate and type one batch, as the browser did (missing values, transforms),
    under the invalid-row policy; returns the typed rows to store and how many it left out.

    reject refuses a batch with any bad cell; valid-only stores the rows that pass;
    with-errors stores every row, a cell that fails typing as null, and each row's errors
    in an `_errors` column (delivered with the row).
    """
    received = decode_ipc(body)
    names = received.column_names
    if len(set(names)) != len(names):
        raise Invalid("The batch names a column twice.")
    rows: int | list[int] = first_row
    if ROW_COLUMN in names:
        rows = _row_numbers(received.column(ROW_COLUMN))
        received = received.drop_columns([ROW_COLUMN])
    for field in received.schema:
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            raise Invalid(f'Column "{field.name}" must hold text, not {field.type}.')
    strings = received.cast(pa.schema([(f.name, pa.string()) for f in received.schema]))
    # `validate` and `coerce` prepare the cells first: missing values ("" by default) are
    # null, so a crafted batch cannot pass "" for a required field.
    try:
        errors, passed = validate_and_coerce(ac.Table.from_arrow(strings), template, rows, earlier)
    except MappingError as exc:
        raise Invalid(str(exc)) from exc
    if not errors and passed is not None and policy is not RowPolicy.WITH_ERRORS:
        return pa.table(passed), 0  # the usual case: every cell passed, typed in one pass
    numbers = rows if isinstance(rows, list) else list(range(rows, rows + strings.num_rows))
    judged = judge(policy, errors, numbers)
    if judged is None:
        raise RowsRejected(
            f"{len(errors)} cell(s) do not pass the template's rules.",
            details=[e.to_dict() for e in errors[:ERRORS_ANSWERED]],
            found=import_views.count_errors((e.code, e.field, e.constraint) for e in errors),
        )
    if judged.left_out:
        strings = strings.take(pa.array(judged.keep, pa.int64()))
    typed = pa.table(coerce(ac.Table.from_arrow(strings), template))
    if policy is RowPolicy.WITH_ERRORS:
        typed = typed.append_column(ERRORS_FIELD, _errors_column(judged, typed.num_rows))
    return typed, judged.left_out


_ERROR_TYPE = pa.list_(
    pa.struct([("field", pa.string()), ("code", pa.string()), ("message", pa.string())])
)


def _errors_column(judged: Judged, num_rows: int) -> pa.Array:
    """Each row's errors (an empty list for a valid row), as the destination receives them."""
    return pa.array(
        [
            [
                {"field": e.field, "code": e.code, "message": e.message}
                for e in judged.errors.get(at, ())
            ]
            for at in range(num_rows)
        ],
        _ERROR_TYPE,
    )


def _row_numbers(column: pa.ChunkedArray) -> list[int]:
    """The browser's row numbers (rows the user deleted leave gaps): positive, increasing."""
    if not pa.types.is_integer(column.type) or column.null_count:
        raise Invalid(f"Column {ROW_COLUMN} must hold whole row numbers.")
    values = column.combine_chunks()
    if len(values) and (
        pc.min(values).as_py() < 1
        or pc.max(values).as_py() > MAX_INT
        or not pc.all(pc.greater(values[1:], values[:-1]), min_count=0).as_py()
    ):  # in Arrow kernels: no Python int per row is compared
        raise Invalid(f"Column {ROW_COLUMN} must hold increasing row numbers from 1 to {MAX_INT}.")
    numbers: list[int] = values.to_pylist()
    return numbers

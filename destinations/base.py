"""The destination contract: a spec (kind, title, typed settings), check() and write().

A kind declares its settings as a frozen dataclass; `setting()` marks each field with a help
text and, for secrets, `secret=True`. From that one declaration the spec parses a client's
JSON strictly, describes a form (or a JSON Schema) for the dashboard, and redacts secrets.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import pyarrow as pa

from destinations.errors import ANSWER_READ, ConfigurationError
from destinations.network import NetworkPolicy

_SECRET = "loadbay.secret"  # noqa: S105 - a metadata key, not a secret
_HELP = "loadbay.help"
_KIND = re.compile(r"[a-z][a-z0-9_-]{0,39}")


@dataclass(frozen=True)
class DeliveryBatch:
    """One batch of clean, typed rows. (import_id, seq) is the idempotency key.

    occurred_at is when the batch was sealed; a destination that stamps its writes uses it,
    not the clock, so that a retry writes exactly what the first attempt did.
    """

    import_id: str
    seq: int
    batch_count: int
    template: str
    table: pa.Table
    occurred_at: dt.datetime | None = None
    destination_id: str = ""  # the configured destination's id (a ledger keys on it)
    org_id: str = ""
    primary_key: tuple[str, ...] = ()  # the template's primaryKey (an upsert's conflict key)
    imported_at: dt.datetime | None = None  # when the import was created: one per import
    left_out: int = 0  # invalid rows this batch left out (the valid-only policy)

    @property
    def key(self) -> str:
        return f"{self.import_id}-{self.seq}"


@dataclass(frozen=True)
class FinishedImport:
    """Every batch of an import was delivered to one destination: what finish() gets.

    row_counts[seq] is the number of rows of batch seq; finish() is called once, after the
    last batch's write() and before that delivery counts as delivered, and again (it must
    be idempotent) when that attempt is retried.
    """

    import_id: str
    template: str
    destination_id: str
    org_id: str
    row_counts: tuple[int, ...]
    imported_at: dt.datetime | None = None

    @property
    def batch_count(self) -> int:
        return len(self.row_counts)


@dataclass(frozen=True)
class WriteResult:
    """What the receiver said about a write or a finish, for the attempt log: its status
    code and its answer (the receiver's own words, cut to ANSWER_READ characters), and
    `detail`, loadbay's own one-line summary ("3 requests", an object key). Never rows."""

    status_code: int | None = None
    answer: str | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.answer is not None and len(self.answer) > ANSWER_READ:
            object.__setattr__(self, "answer", self.answer[:ANSWER_READ])


NOTHING_SAID = WriteResult()


@dataclass(frozen=True)
class DestinationContext:
    """What the operator decides, not the client: which networks may be reached."""

    policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    ca_file: str | None = None
    timeout: float = 15.0
    statement_timeout: float = 30.0
    """The longest one statement (a COPY, a swap) may run at a database destination: below
    the delivery job's timeout, so a stuck statement fails as a retryable delivery error
    instead of the job being killed mid-transaction."""


class Destination(Protocol):
    """One configured destination. Errors raised are DeliveryErrors (see errors.py)."""

    @property
    def kind(self) -> str: ...

    @property
    def spec(self) -> DestinationSpec[Any]: ...

    def check(self) -> None:
        """Raise a DeliveryError that says what to fix when the destination is unusable.

        Writes and sends nothing: a receiver may not be up yet when a destination is created.
        """

    def write(self, batch: DeliveryBatch) -> WriteResult:
        """Deliver the batch; delivering the same batch twice must have one effect."""

    # Optional: `probe(self) -> str` reaches the destination as a delivery would, writing no
    # rows, and says what it found ("test connection"); raises a DeliveryError otherwise.

    def finish(self, done: FinishedImport) -> WriteResult | None:
        """Every batch of an import is delivered here (a manifest, a table swap); None when
        the kind has nothing to do. Called once per import and destination (again only when
        it raised); it must be idempotent."""


def setting(help: str, *, secret: bool = False, default: Any = dataclasses.MISSING) -> Any:
    """A field of a settings dataclass. Secrets are left out of repr() and never echoed."""
    metadata = {_HELP: help, _SECRET: secret}
    if default is dataclasses.MISSING:
        return field(repr=not secret, metadata=metadata)
    return field(default=default, repr=not secret, metadata=metadata)


@dataclass(frozen=True)
class ConfigField:
    """One setting, as a dashboard form renders it.

    type is a JSON Schema type: "string", "integer", "number", "boolean" or "array" (of
    item_type). A secret is write-only: its default and current value are never shown.
    """

    name: str
    type: str
    required: bool
    secret: bool
    help: str
    nullable: bool = False
    item_type: str | None = None
    default: Any = None


_JSON_TYPES: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}

C = TypeVar("C")


@dataclass(frozen=True)
class DestinationSpec(Generic[C]):
    """What a destination kind declares: its name, a title, its settings and a builder.

    config is a frozen dataclass whose fields come from `setting()`; build turns parsed
    settings and the operator's context into a Destination.
    """

    kind: str
    title: str
    config: type[C]
    build: Callable[[C, DestinationContext], Destination]
    # Delivered by the importer page, not by workers (the host page): write() never
    # succeeds, and the delivery is settled when the page acknowledges what it was handed.
    relayed: bool = False

    def __post_init__(self) -> None:
        if not _KIND.fullmatch(self.kind):
            raise ValueError(f"destination kind {self.kind!r} must match {_KIND.pattern}")
        params = getattr(self.config, "__dataclass_params__", None)
        if params is None or not params.frozen:
            raise TypeError(f"{self.kind}: settings must be a frozen dataclass")

    @functools.cached_property
    def fields(self) -> tuple[ConfigField, ...]:
        hints = typing.get_type_hints(self.config)
        return tuple(
            _describe(f, hints[f.name])
            for f in dataclasses.fields(self.config)  # type: ignore[arg-type]
        )

    def json_schema(self) -> dict[str, Any]:
        """The settings as a JSON Schema object; secrets are marked writeOnly."""
        properties: dict[str, Any] = {}
        for f in self.fields:
            prop: dict[str, Any] = {"type": [f.type, "null"] if f.nullable else f.type}
            if f.item_type is not None:
                prop["items"] = {"type": f.item_type}
            prop["description"] = f.help
            if f.secret:
                prop["writeOnly"] = True
            elif not f.required:
                prop["default"] = f.default
            properties[f.name] = prop
        return {
            "title": self.title,
            "type": "object",
            "properties": properties,
            "required": [f.name for f in self.fields if f.required],
            "additionalProperties": False,
        }

    def parse(self, config: Mapping[str, Any]) -> C:
        """Typed settings from a client's JSON object; ConfigurationError says what is wrong.

        Unknown keys, missing required ones and values of the wrong JSON type are refused.
        Messages name keys and types, never values (a value may be a secret).
        """
        if not isinstance(config, Mapping):
            raise ConfigurationError(
                f"The settings of a {self.kind} destination must be a JSON object, "
                f"not {_json_type(config)}."
            )
        known = {f.name: f for f in self.fields}
        unknown = sorted(str(key) for key in config if key not in known)
        if unknown:
            raise ConfigurationError(
                f"Unknown setting{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))} for a {self.kind} destination; "
                f"its settings are: {', '.join(known)}."
            )
        values: dict[str, Any] = {}
        for f in self.fields:
            if f.name not in config:
                if f.required:
                    raise ConfigurationError(
                        f'A {self.kind} destination needs "{f.name}": {f.help}'
                    )
                continue
            values[f.name] = _coerce(self.kind, f, config[f.name])
        return self.config(**values)

    def create(self, config: Mapping[str, Any], context: DestinationContext) -> Destination:
        return self.build(self.parse(config), context)

    def redact(self, config: C | Mapping[str, Any]) -> dict[str, Any]:
        """The settings safe to show: each secret answered as {"set": true|false}.

        Takes parsed settings or the stored JSON object; keys the spec does not declare are
        left out (nobody can say whether they are secret).
        """
        if isinstance(config, Mapping):
            present: dict[str, Any] = dict(config)
        else:
            present = {f.name: getattr(config, f.name) for f in self.fields}
        shown: dict[str, Any] = {}
        for f in self.fields:
            value = present.get(f.name)
            if f.secret:
                shown[f.name] = {"set": _is_set(value)}
            elif f.name in present:
                shown[f.name] = list(value) if isinstance(value, tuple) else value
        return shown


def _describe(f: dataclasses.Field[Any], hint: Any) -> ConfigField:
    nullable = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"setting {f.name}: only X | None unions are supported")
        hint, nullable = args[0], True
    item_type = None
    if typing.get_origin(hint) is tuple:
        item, ellipsis = typing.get_args(hint)
        if ellipsis is not Ellipsis or item not in _JSON_TYPES:
            raise TypeError(f"setting {f.name}: only tuple[X, ...] of a JSON scalar")
        kind, item_type = "array", _JSON_TYPES[item]
    elif hint in _JSON_TYPES:
        kind = _JSON_TYPES[hint]
    else:
        raise TypeError(f"setting {f.name}: {hint!r} is not a supported setting type")
    required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    secret = bool(f.metadata.get(_SECRET, False))
    default = None if required or secret else f.default
    return ConfigField(
        name=f.name,
        type=kind,
        required=required,
        secret=secret,
        help=str(f.metadata.get(_HELP, "")),
        nullable=nullable,
        item_type=item_type,
        default=list(default) if isinstance(default, tuple) else default,
    )


def _coerce(kind: str, f: ConfigField, value: Any) -> Any:
    if value is None and f.nullable:
        return None
    if f.type == "array":
        assert f.item_type is not None  # noqa: S101 - set for every array in _describe
        if isinstance(value, list | tuple) and all(_is(f.item_type, v) for v in value):
            return tuple(float(v) if f.item_type == "number" else v for v in value)
        expected = f"a list of {_PLURALS[f.item_type]}"
    elif _is(f.type, value):
        return float(value) if f.type == "number" else value
    else:
        expected = _NAMES[f.type]
    raise ConfigurationError(
        f'The "{f.name}" setting of a {kind} destination must be {expected}'
        f"{' or null' if f.nullable else ''}, not {_json_type(value)}."
    )


_NAMES = {"string": "text", "integer": "an integer", "number": "a number", "boolean": "true/false"}
_PLURALS = {"string": "texts", "integer": "integers", "number": "numbers", "boolean": "true/false"}


def _is(json_type: str, value: Any) -> bool:
    if json_type == "string":
        return isinstance(value, str)
    if json_type == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if json_type == "integer":
        return isinstance(value, int)
    return isinstance(value, int | float)


def _is_set(value: object) -> bool:
    if isinstance(value, str | list | tuple):
        return len(value) > 0
    return value is not None


def _json_type(value: object) -> str:
    """The JSON type a client sent, for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__

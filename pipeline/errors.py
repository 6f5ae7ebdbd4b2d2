"""Exceptions for what stops the engine outright.

Problems *in* the data (a bad cell, a missing value) are not exceptions: they are
`pipeline.validation.CellError` values. These are for a file or template that cannot
be used at all; their messages are shown to people as they are.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class; the message says what is wrong, where, and what to do."""


class ReadError(PipelineError):
    """The file cannot be read (wrong format, broken encoding, malformed rows)."""


class TemplateError(PipelineError):
    """The template is not a usable Table Schema."""


class MappingError(PipelineError):
    """The column mapping does not fit the template."""

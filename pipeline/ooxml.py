"""Which part of a zip package is its workbook, read from the package, never assumed.

An Office Open XML package names its main part in `_rels/.rels` (the relationship of type
officeDocument) and gives that part's content type in `[Content_Types].xml`. Excel writes
`xl/workbook.xml`, but any part name is valid, and python-calamine follows the
relationships too; so the kind of a zip-based spreadsheet comes from these two parts.
An OpenDocument package lists its encrypted parts in META-INF/manifest.xml.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
import zlib
from xml.etree import ElementTree

from pipeline.protocol import FileKind

MAX_PART_BYTES = 1024 * 1024  # relationships and content types are small; larger: not read
_OFFICE_DOCUMENT = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument",
    "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument",  # Strict
)
_KINDS = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": FileKind.XLSX,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml": FileKind.XLSX,
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml": FileKind.XLSM,
    "application/vnd.ms-excel.template.macroEnabled.main+xml": FileKind.XLSM,
    "application/vnd.ms-excel.sheet.binary.macroEnabled.main": FileKind.XLSB,
}
_ENCRYPTION_DATA = re.compile(rb"<([\w.-]+:)?encryption-data[\s/>]")


def _small_part(zf: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_PART_BYTES:
        return None
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError):
        return None  # the caller's zip checks report a damaged package


def _xml(data: bytes | None) -> ElementTree.Element | None:
    if data is None or b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return None  # these parts never declare a DTD: do not expand one
    try:
        return ElementTree.fromstring(data)  # noqa: S314 - no DTD (refused above), <= 1 MiB
    except ElementTree.ParseError:
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def workbook_part(zf: zipfile.ZipFile) -> str | None:
    """The zip entry `_rels/.rels` names as the package's main part, if it exists."""
    root = _xml(_small_part(zf, "_rels/.rels"))
    if root is None:
        return None
    names = set(zf.namelist())
    for rel in root:
        if _local(rel.tag) != "Relationship" or rel.get("Type") not in _OFFICE_DOCUMENT:
            continue
        if rel.get("TargetMode") == "External":
            continue
        target = posixpath.normpath(rel.get("Target", "").lstrip("/"))
        if target in names:
            return target
    return None


def _content_type(zf: zipfile.ZipFile, part: str) -> str | None:
    root = _xml(_small_part(zf, "[Content_Types].xml"))
    if root is None:
        return None
    default = None
    extension = part.rsplit(".", 1)[-1].lower() if "." in part else ""
    for entry in root:
        tag = _local(entry.tag)
        if tag == "Override" and (entry.get("PartName") or "").lstrip("/") == part:
            return entry.get("ContentType")
        if tag == "Default" and (entry.get("Extension") or "").lower() == extension:
            default = entry.get("ContentType")
    return default


def workbook_kind(zf: zipfile.ZipFile) -> FileKind | None:
    """xlsx, xlsm or xlsb when the package's main part is a workbook; None otherwise."""
    part = workbook_part(zf)
    if part is None:
        return None
    return _KINDS.get(_content_type(zf, part) or "")


def ods_encrypted(zf: zipfile.ZipFile) -> bool:
    """An OpenDocument file saved with a password: its manifest has encryption data."""
    manifest = _small_part(zf, "META-INF/manifest.xml")
    return manifest is not None and _ENCRYPTION_DATA.search(manifest) is not None

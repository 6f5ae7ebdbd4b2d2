"""A file's type, judged by its bytes (never by its name).

zip magic -> xlsx / xlsm / xlsb / ods, told apart by the entries in the zip;
OLE2 magic -> xls, or a password-protected Office file (an "EncryptionInfo" stream);
`[` or `{` first (after a BOM and whitespace) -> json or ndjson; anything else is
delimited text (csv).
"""

from __future__ import annotations

import re
import zipfile

from pipeline.errors import ReadError
from pipeline.ooxml import workbook_kind
from pipeline.protocol import FileKind

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def password_protected(name: str) -> str:
    return (
        f"{name} is password-protected; remove the password and save it again, "
        "then pick the file again."
    )


def damaged(name: str, what: str, detail: str = "") -> str:
    extra = f" ({detail})" if detail else ""
    return (
        f"{name} looks like {what} but cannot be opened: it is damaged or incomplete{extra}. "
        "Open it in your spreadsheet program, save it again, and pick the new file."
    )


def detect_kind(path: str, name: str, head: bytes) -> FileKind:
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        return _zip_kind(path, name)
    if head.startswith(OLE2_MAGIC):
        if _ole2_has_encryption_info(path):
            raise ReadError(password_protected(name))
        return FileKind.XLS
    return _text_kind(head)


def _zip_kind(path: str, name: str) -> FileKind:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            workbook = workbook_kind(zf)  # the part the package's relationships name
            mimetype = b""
            if "mimetype" in names and zf.getinfo("mimetype").file_size < 200:
                mimetype = zf.read("mimetype").strip()
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise ReadError(damaged(name, "a zip-based spreadsheet (xlsx, ods)", str(exc))) from exc
    if mimetype == ODS_MIMETYPE:
        return FileKind.ODS
    if workbook is not None:
        return workbook
    if "xl/workbook.bin" in names:
        return FileKind.XLSB
    if "xl/workbook.xml" in names:
        if "xl/vbaProject.bin" in names or _content_types_say_macro(path):
            return FileKind.XLSM
        return FileKind.XLSX
    if mimetype.startswith(b"application/vnd.oasis.opendocument"):
        raise ReadError(
            f"{name} is an OpenDocument file but not a spreadsheet. "
            "Pick an .ods spreadsheet, an Excel file or a CSV file."
        )
    if "[Content_Types].xml" in names:
        raise ReadError(
            f"{name} is an Office document but not a spreadsheet (no workbook inside). "
            "Pick an Excel workbook, an .ods spreadsheet or a CSV file."
        )
    raise ReadError(
        f"{name} is a zip archive, not a spreadsheet. "
        "Unzip it and pick the CSV or Excel file inside."
    )


def _content_types_say_macro(path: str) -> bool:
    with zipfile.ZipFile(path) as zf:
        if "[Content_Types].xml" not in zf.namelist():
            return False
        info = zf.getinfo("[Content_Types].xml")
        if info.file_size > 1024 * 1024:
            return False
        return b"macroEnabled" in zf.read(info)


def _ole2_has_encryption_info(path: str) -> bool:
    """An encrypted OOXML file is an OLE2 container with an "EncryptionInfo" stream.

    The stream's name sits in a directory sector, stored UTF-16LE; scan for it in chunks
    (the name may straddle a chunk boundary, hence the overlap).
    """
    overlap = len(_ENCRYPTION_INFO)
    tail = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            if _ENCRYPTION_INFO in tail + chunk:
                return True
            tail = chunk[-overlap:]
    return False


def _text_kind(head: bytes) -> FileKind:
    sample = head
    for bom in _BOMS:
        if sample.startswith(bom):
            if bom != _BOMS[0]:  # UTF-16: compare on the decoded text
                codec = "utf-16-le" if bom == b"\xff\xfe" else "utf-16-be"
                text = sample[2:].decode(codec, errors="ignore")
                return _kind_of_text(text)
            sample = sample[len(bom) :]
            break
    return _kind_of_text(sample.decode("latin-1"))


_JSON_ARRAY = re.compile(r'\[\s*([{\["\]\-0-9]|true|false|null)')
_JSON_OBJECT = re.compile(r'\{\s*["}]')


def _kind_of_text(text: str) -> FileKind:
    stripped = text.lstrip()
    if _JSON_ARRAY.match(stripped):
        return FileKind.JSON
    if _JSON_OBJECT.match(stripped):
        return FileKind.NDJSON  # jsonfile tells one pretty-printed object from object-per-line
    return FileKind.CSV

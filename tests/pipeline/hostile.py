"""Hostile files made on the fly: zip bombs, lying zip directories, many-entry zips."""

from __future__ import annotations

import io
import struct
import zipfile

CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    b'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>'
)
WORKBOOK = (
    b'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
    b'spreadsheetml/2006/main"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets>'
    b"</workbook>"
)


def _xlsx_shell(zf: zipfile.ZipFile) -> None:
    zf.writestr("[Content_Types].xml", CONTENT_TYPES)
    zf.writestr("xl/workbook.xml", WORKBOOK)


def bomb_xlsx(megabytes: int = 200) -> bytes:
    """An xlsx-looking zip whose sheet XML is `megabytes` MB of zeros (< 1 MB compressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        _xlsx_shell(zf)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            block = b"0" * (1024 * 1024)
            for _ in range(megabytes):
                fh.write(block)
    return out.getvalue()


def lying_xlsx(real_megabytes: int = 50, claimed: int = 2000) -> bytes:
    """A zip whose directory (and local header) claims `claimed` bytes for the sheet XML,
    which really inflates to `real_megabytes` MB: the directory's ratio looks harmless."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        _xlsx_shell(zf)
        zf.writestr("xl/worksheets/sheet1.xml", b"0" * (real_megabytes * 1024 * 1024))
    data = bytearray(out.getvalue())
    name = b"xl/worksheets/sheet1.xml"
    # Central directory entry: signature PK\1\2, uncompressed size at offset 24.
    central = data.index(b"PK\x01\x02" + bytes(24)[:0])  # first central entry
    while True:
        at = data.index(b"PK\x01\x02", central)
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + name_len]) == name:
            struct.pack_into("<I", data, at + 24, claimed)
            local = struct.unpack_from("<I", data, at + 42)[0]
            struct.pack_into("<I", data, local + 22, claimed)
            break
        central = at + 4
    return bytes(data)


def many_entries_zip(count: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        _xlsx_shell(zf)
        for i in range(count):
            zf.writestr(f"xl/media/{i}.bin", b"")
    return out.getvalue()


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("readme.txt", b"hello")
    return out.getvalue()

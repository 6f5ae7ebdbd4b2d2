"""RFC 9530 `Content-Digest` on batch uploads: what the browser sent is what arrived.

The digest covers the request content as sent, that is the gzip bytes when the body is
gzipped (RFC 9530 section 2: Content-Digest is over the content after content coding), so
it is checked before anything is inflated or decoded. Only `sha-256` is accepted: the
browser computes it with `crypto.subtle`, and a weaker algorithm would vouch for nothing.
"""

from __future__ import annotations

import hashlib
import hmac

import http_sf

from server.errors import BadDigest

ALGORITHM = "sha-256"


def check_content_digest(header: str | None, body: bytes) -> None:
    """BadDigest (400) unless `header` carries a sha-256 digest of exactly `body`."""
    if header is None or not header.strip():
        raise BadDigest(
            "A batch must carry a Content-Digest header (RFC 9530) with the SHA-256 of its "
            "body as sent, e.g. `Content-Digest: sha-256=:<base64>:`."
        )
    try:
        parsed = http_sf.parse(header.encode("ascii", "replace"), tltype="dictionary")
    except http_sf.StructuredFieldError as exc:
        raise BadDigest(
            f"The Content-Digest header is not an RFC 9530 dictionary ({exc}); "
            "send `sha-256=:<base64 of the SHA-256 of the body>:`."
        ) from None
    member = parsed.get(ALGORITHM) if isinstance(parsed, dict) else None
    claimed = member[0] if isinstance(member, tuple) else None
    if not isinstance(claimed, bytes):
        raise BadDigest(
            "The Content-Digest header must hold a sha-256 byte sequence "
            "(`sha-256=:<base64>:`); other algorithms are not accepted."
        )
    if not hmac.compare_digest(claimed, hashlib.sha256(body).digest()):
        raise BadDigest(
            "The batch's body does not match its Content-Digest: it was changed or cut "
            "short on the way. Send the batch again."
        )


def content_digest_header(body: bytes) -> str:
    """The header a client sends with `body` (what the browser's uploader computes)."""
    return http_sf.ser({ALGORITHM: (hashlib.sha256(body).digest(), {})})

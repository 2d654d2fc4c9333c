"""Presigned URLs in the shape of S3's SigV4 query signing (CONTRACT.md "Presigned S3 URLs").

The object key is percent-encoded as S3 does (``quote(key, safe="/-_.~")``). The signature
is an HMAC-SHA256, under the sandbox's secret, of the method, the *raw* encoded path, the
sorted raw query without ``X-Amz-Signature``, the signed headers: ``content-type`` and
``host`` for a PUT (upload), ``host`` alone for a GET (download). Checking the raw request
target means a client that re-encodes the URL it was given fails with
``SignatureDoesNotMatch``, as against real S3; so does a PUT URL used for a GET.

>>> from datetime import datetime, UTC
>>> signer = Presigner(secret=b"s", origin="http://127.0.0.1:9", bucket="b")
>>> url = signer.url("ea/ea/u/INPUT_FILE/a b.csv", datetime(2026, 1, 2, tzinfo=UTC), 60)
>>> url.split("?")[0]
'http://127.0.0.1:9/b/ea/ea/u/INPUT_FILE/a%20b.csv'
>>> signer.check(url[len("http://127.0.0.1:9"):], "application/octet-stream", "127.0.0.1:9")
(True, datetime.datetime(2026, 1, 2, 0, 1, tzinfo=datetime.timezone.utc))
>>> signer.check(url[len("http://127.0.0.1:9"):], None, "127.0.0.1:9", method="GET")
(False, None)
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote, urlsplit

SIGNED_CONTENT_TYPE = "application/octet-stream"
SIGNED_HEADERS = "content-type;host"
GET_SIGNED_HEADERS = "host"
ACCESS_KEY_ID = "SANDBOXACCESSKEY"
REGION = "us-east-1"
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_QUERY_NAMES = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
)


def encode_key(object_key: str) -> str:
    """The object key percent-encoded as S3 does (UTF-8; "/" kept).

    >>> encode_key("ea/x/IN/100% a+b#ü.csv")
    'ea/x/IN/100%25%20a%2Bb%23%C3%BC.csv'
    """
    return quote(object_key, safe="/-_.~")


def _signed_headers(method: str) -> str:
    return GET_SIGNED_HEADERS if method == "GET" else SIGNED_HEADERS


def _raw_pairs(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in raw_query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


@dataclass(frozen=True, slots=True)
class Presigner:
    """Signs and checks PUT URLs for one bucket served at ``origin`` (``http://host:port``)."""

    secret: bytes
    origin: str
    bucket: str

    @property
    def host(self) -> str:
        """The ``host`` header value the URLs are signed for (``host:port``)."""
        return urlsplit(self.origin).netloc

    def bucket_prefix(self) -> str:
        """The raw path prefix of every object URL: ``/<bucket>/``."""
        return f"/{self.bucket}/"

    def _signature(
        self, method: str, raw_path: str, pairs: list[tuple[str, str]], host: str
    ) -> str:
        canonical_query = "&".join(
            f"{name}={value}" for name, value in sorted(pairs) if name != "X-Amz-Signature"
        )
        content_type = [] if method == "GET" else [f"content-type:{SIGNED_CONTENT_TYPE}"]
        canonical = "\n".join(
            (
                method,
                raw_path,
                canonical_query,
                *content_type,
                f"host:{host}",
                "",
                _signed_headers(method),
            )
        )
        return hmac.new(self.secret, canonical.encode("utf-8"), hashlib.sha256).hexdigest()

    def url(
        self, object_key: str, signed_at: datetime, lifetime: float, *, method: str = "PUT"
    ) -> str:
        """A presigned ``method`` (PUT or GET) URL for ``object_key``, signed at ``signed_at``.

        ``X-Amz-Expires`` is whole seconds (at least 1); callers wanting sub-second
        lifetimes enforce their own deadline as well (the sandbox does).
        """
        raw_path = self.bucket_prefix() + encode_key(object_key)
        credential = f"{ACCESS_KEY_ID}/{signed_at:%Y%m%d}/{REGION}/s3/aws4_request"
        values = (
            "AWS4-HMAC-SHA256",
            credential,
            signed_at.astimezone(UTC).strftime(_DATE_FORMAT),
            str(max(1, math.ceil(lifetime))),
            _signed_headers(method),
        )
        pairs = [
            (name, quote(value, safe="-_.~"))
            for name, value in zip(_QUERY_NAMES, values, strict=True)
        ]
        signature = self._signature(method, raw_path, pairs, self.host)
        query = "&".join(f"{name}={value}" for name, value in pairs)
        return f"{self.origin}{raw_path}?{query}&X-Amz-Signature={signature}"

    def check(
        self,
        raw_target: str,
        content_type: str | None,
        host: str | None,
        *,
        method: str = "PUT",
    ) -> tuple[bool, datetime | None]:
        """``(signature ok, expiry time)`` for a ``method`` request's raw target (path?query).

        The signature fails when any signing parameter is missing or repeated, when the
        raw path or query differs from what was signed, when the URL was signed for another
        method, or (PUT only) when ``content_type`` is not exactly the signed
        ``application/octet-stream``.
        """
        raw_path, _, raw_query = raw_target.partition("?")
        pairs = _raw_pairs(raw_query)
        names = [name for name, _ in pairs]
        required = (*_QUERY_NAMES, "X-Amz-Signature")
        if any(names.count(name) != 1 for name in required):
            return False, None
        given = dict(pairs)["X-Amz-Signature"]
        expected = self._signature(method, raw_path, pairs, host or "")
        type_ok = method == "GET" or content_type == SIGNED_CONTENT_TYPE
        if not type_ok or not hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), expected.encode("ascii")
        ):
            return False, None
        params = {name: unquote(value) for name, value in pairs}
        try:
            signed_at = datetime.strptime(params["X-Amz-Date"], _DATE_FORMAT).replace(tzinfo=UTC)
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            return False, None
        return True, signed_at + timedelta(seconds=expires)

    @staticmethod
    def signature_of(url: str) -> str | None:
        """The ``X-Amz-Signature`` of a URL or raw target, or ``None`` (absent or repeated)."""
        values = [v for n, v in _raw_pairs(url.partition("?")[2]) if n == "X-Amz-Signature"]
        return values[0] if len(values) == 1 else None

    def object_key(self, raw_target: str) -> str | None:
        """The decoded object key of a raw request target, or ``None`` outside the bucket."""
        raw_path = raw_target.partition("?")[0]
        prefix = self.bucket_prefix()
        if not raw_path.startswith(prefix):
            return None
        return unquote(raw_path[len(prefix) :])

"""Keeping secrets out of text: ``Secret`` and ``redact_url``.

A client secret or an access token lives in a ``Secret``, whose ``repr`` and
``str`` never show it. A presigned S3 URL carries its credential in the query
string (``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``);
``redact_url`` replaces those values before a URL goes into any message.
"""

from __future__ import annotations

import hmac
import re
from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Secret", "redact_text", "redact_url"]

_MASK: Final = "REDACTED"
_SECRET_QUERY_KEYS: Final = frozenset(
    {
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "signature",
        "awsaccesskeyid",
        "x-goog-signature",
        "x-goog-credential",
        "sig",
        "token",
        "access_token",
        "client_secret",
    }
)


class Secret:
    """A string that does not show itself: ``repr``/``str`` print a mask.

    >>> s = Secret("hunter2")
    >>> s, str(s), s.reveal()
    (Secret('********'), '********', 'hunter2')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret holds a str, got {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def get_secret_value(self) -> str:
        """``reveal()`` under pydantic's ``SecretStr`` name, which the original client's
        ``token.access_token`` was."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not pickled: it would be written out in clear")

    def __copy__(self) -> Secret:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self


def redact_url(url: str) -> str:
    """``url`` with the values of credential-bearing query parameters masked.

    Parameter names and order are kept, so the text still says what was sent.

    >>> redact_url("https://b.s3.amazonaws.com/k.csv?X-Amz-Date=1&X-Amz-Signature=abc")
    'https://b.s3.amazonaws.com/k.csv?X-Amz-Date=1&X-Amz-Signature=REDACTED'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if not parts.query:
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    pairs = []
    for pair in parts.query.split("&"):
        name, sep, _value = pair.partition("=")
        if sep and name.lower() in _SECRET_QUERY_KEYS:
            pairs.append(f"{name}={_MASK}")
        else:
            pairs.append(pair)
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(pairs), ""))


_URL_IN_TEXT: Final = re.compile(r"""https?://[^\s'"<>]+""")
_BEARER: Final = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_SECRET_PARAM: Final = re.compile(
    r"(?i)(?<![A-Za-z0-9_-])("
    + "|".join(re.escape(key) for key in sorted(_SECRET_QUERY_KEYS, key=len, reverse=True))
    + r")=[^&\s'\"]+"
)
_RELATIVE_URL_WITH_QUERY: Final = re.compile(r"""(url: )(/[^\s'"?]*)\?[^\s'"]*""")


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` (an exception message, say) with URLs redacted and ``secrets`` masked.

    Used on the text of lower-level exceptions (urllib3 puts the request URL,
    presigned signature included, in its messages).

    >>> redact_text("Max retries exceeded with url: /k.csv?X-Amz-Signature=abc (Caused by x)")
    'Max retries exceeded with url: /k.csv?REDACTED (Caused by x)'
    """
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    text = _RELATIVE_URL_WITH_QUERY.sub(r"\1\2?" + _MASK, text)
    text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={_MASK}", text)
    text = _BEARER.sub(r"\1" + _MASK, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, _MASK)
    return text

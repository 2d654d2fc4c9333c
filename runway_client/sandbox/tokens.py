"""Access tokens: issue and verify HS256 JWTs shaped like Auth0's client-credentials tokens.

Claims (CONTRACT.md "Token"): ``iss`` (auth base URL + "/"), ``sub`` (``<client_id>@clients``),
``aud`` (the instance origin), ``iat``/``exp`` (seconds since the epoch), ``scope``
(space-separated), ``client_id`` and ``gty`` = ``client-credentials``.

>>> authority = TokenAuthority(key=b"k" * 32, issuer="http://idp/", audience="http://api")
>>> claims = authority.verify(authority.issue("cid", "create:jobs partner:ea", lifetime=60))
>>> scopes_of(claims), partners_of(scopes_of(claims) or ())
(('create:jobs', 'partner:ea'), ('ea',))
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jwt

PARTNER_SCOPE_PREFIX = "partner:"


class InvalidToken(Exception):
    """The token's signature, audience, issuer, expiry or encoding is wrong."""


@dataclass(frozen=True, slots=True)
class TokenAuthority:
    """Signs tokens for one audience with one HS256 key, and checks them.

    ``key`` is the secret HMAC key; ``issuer`` ends with "/" as Auth0's does;
    ``audience`` is the instance origin with no trailing slash.
    """

    key: bytes
    issuer: str
    audience: str

    def issue(
        self,
        client_id: str,
        scope: str,
        *,
        lifetime: float,
        client_id_claim: bool = True,
        include_scope: bool = True,
    ) -> str:
        """A signed JWT for ``client_id`` valid ``lifetime`` seconds (negative: already expired).

        ``client_id_claim=False`` leaves out ``client_id``; ``include_scope=False`` leaves
        out ``scope`` (for testing the API's 403 answers).
        """
        issued_at = math.floor(time.time())
        claims: dict[str, object] = {
            "iss": self.issuer,
            "sub": f"{client_id}@clients",
            "aud": self.audience,
            "iat": issued_at,
            # Whole seconds: a short positive lifetime stays valid for a moment, a negative
            # one is already expired.
            "exp": issued_at + (math.ceil(lifetime) if lifetime > 0 else math.floor(lifetime)),
            "gty": "client-credentials",
        }
        if client_id_claim:
            claims["client_id"] = client_id
        if include_scope:
            claims["scope"] = scope
        return jwt.encode(claims, self.key, algorithm="HS256")

    def verify(self, token: str) -> dict[str, object]:
        """The token's claims, or ``InvalidToken`` (bad signature, audience, issuer, expiry)."""
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                self.key,
                algorithms=["HS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "aud", "iss"]},
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from error
        return claims


def scopes_of(claims: Mapping[str, object]) -> tuple[str, ...] | None:
    """The ``scope`` claim split on whitespace, in order; ``None`` when the claim is absent.

    >>> scopes_of({"scope": "a  b"}), scopes_of({})
    (('a', 'b'), None)
    """
    scope = claims.get("scope")
    if isinstance(scope, str):
        return tuple(scope.split())
    if isinstance(scope, list) and all(isinstance(item, str) for item in scope):
        return tuple(scope)
    return None


def partners_of(scopes: Sequence[str]) -> tuple[str, ...]:
    """Partner codes from ``partner:<code>`` scopes, in order, without duplicates.

    >>> partners_of(["create:jobs", "partner:b", "partner:a", "partner:b"])
    ('b', 'a')
    """
    codes = (s[len(PARTNER_SCOPE_PREFIX) :] for s in scopes if s.startswith(PARTNER_SCOPE_PREFIX))
    return tuple(dict.fromkeys(code for code in codes if code))


def client_of(claims: Mapping[str, object]) -> str | None:
    """The ``client_id`` claim, else ``azp``; ``None`` when neither is a non-empty string."""
    for name in ("client_id", "azp"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None

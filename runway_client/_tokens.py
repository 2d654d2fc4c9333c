"""``TokenCache``: the token source every flow uses unless given another.

A value of the steps layer (ARCHITECTURE.md, "Growing the house"): it asks the
identity provider (``authorize``) only when it holds no good token for a scope
set, so a functional ``load_files`` costs one token request and a wait of any
length one while the token lives. ``RunwayClient`` holds one; a custom flow can
make one and pass it to every flow it runs (``token_source=``).
"""

from __future__ import annotations

import threading

from returns.result import Result, Success

from runway_client._config import RunwayConfig
from runway_client._defaults import TOKEN_LEEWAY_SECONDS
from runway_client._errors import RunwayError
from runway_client._models import Token
from runway_client._steps import authorize
from runway_client._transport import Transport

__all__ = ["TokenCache"]


class TokenCache:
    """A thread-safe ``TokenSource``: one token per scope set, renewed with leeway.

    A cached token is given while it has more than ``TOKEN_LEEWAY_SECONDS`` (60 s,
    or a quarter of its lifetime if shorter) left, and is not the ``rejected`` one
    (a token the API just refused with 401). Callers asking at once for the same
    scope set share one request to the identity provider; after a 401 seen by
    many threads, the first renews and the others get its new token. A slow
    request for one scope set does not hold up callers of another.

    Errors: those of ``authorize`` (``AuthenticationError``, ``RateLimitError`` ...),
    returned as ``Failure`` and not cached.

    >>> from runway_client._config import make_config
    >>> config = make_config(runway_base_url="https://api.x.org/api/v1",
    ...     auth_base_url="https://a.auth0.com", client_id="id", client_secret="s",
    ...     partner_code="ea").unwrap()
    >>> cache = TokenCache(transport=None, config=config)  # type: ignore[arg-type]
    >>> cache.cached(("create:jobs", "partner:ea")) is None
    True
    """

    def __init__(self, transport: Transport, config: RunwayConfig) -> None:
        self.transport = transport
        self.config = config
        self._tokens: dict[tuple[str, ...], Token] = {}
        self._lock = threading.Lock()  # guards _scope_locks and _tokens
        self._scope_locks: dict[tuple[str, ...], threading.Lock] = {}

    def __repr__(self) -> str:
        return f"TokenCache(token_url={self.config.token_url!r}, scope_sets={len(self._tokens)})"

    def __call__(
        self, scopes: tuple[str, ...], /, *, rejected: Token | None = None
    ) -> Result[Token, RunwayError]:
        """A token for ``scopes``: the cached one while it is fresh and not
        ``rejected``, else a new one from the identity provider."""
        key = _key(scopes)
        with self._lock:
            lock = self._scope_locks.setdefault(key, threading.Lock())
        with lock:
            cached = self.cached(scopes)
            if cached is not None and not _same(cached, rejected):
                return Success(cached)
            fetched = authorize(self.transport, self.config, scopes)
            if isinstance(fetched, Success):
                with self._lock:
                    self._tokens[key] = fetched.unwrap()
            return fetched

    def cached(self, scopes: tuple[str, ...]) -> Token | None:
        """The cached token for ``scopes`` if it is still fresh, else ``None`` (no request)."""
        with self._lock:
            token = self._tokens.get(_key(scopes))
        if token is None or not token.is_fresh(leeway=TOKEN_LEEWAY_SECONDS):
            return None
        return token

    def clear(self) -> None:
        """Forget every cached token (the next call asks the identity provider)."""
        with self._lock:
            self._tokens.clear()


def _key(scopes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(set(scopes)))


def _same(token: Token, rejected: Token | None) -> bool:
    # identity, not equality: an identity provider may issue the same token text
    # again within a second, and a token fetched after the refusal is a new one
    return token is rejected

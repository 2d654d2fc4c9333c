"""Hypothesis strategies for property-testing code built on runway_client.

>>> from hypothesis import given
>>> from runway_client.testing.strategies import job_specs
>>> from runway_client._models import JobRequest
>>> @given(job_specs())
... def test_body_has_end_year(spec):
...     assert len(JobRequest.from_spec(spec).school_year) == 4
>>> test_body_has_end_year()

Needs ``hypothesis`` (in the ``dev`` extra).
"""

from __future__ import annotations

import string

from hypothesis import strategies as st

from runway_client._models import InputFile, JobSpec, SchoolYear, Token
from runway_client._redaction import Secret

__all__ = [
    "base_urls",
    "codes",
    "end_years",
    "file_keys",
    "file_names",
    "job_specs",
    "school_year_spellings",
    "secrets",
    "tokens",
]

end_years = st.integers(min_value=2001, max_value=2099)
"""End years every spelling can express (2000 has no two-digit ``Y1Y2`` form)."""

codes = st.text(string.ascii_lowercase + string.digits + "_-", min_size=1, max_size=20)
"""Partner and tenant codes."""

file_keys = st.from_regex(r"[A-Z][A-Z0-9_]{0,29}", fullmatch=True)
"""Bundle file keys (``env_var`` style): ``INPUT_FILE``, ``INPUT_FILE_DS`` ..."""

file_names = (
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\x00"),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(lambda name: name not in ("", ".", ".."))
)
"""Base names a file can have (any Unicode but path separators and controls)."""

secrets = st.text(
    string.ascii_letters + string.digits + "+&=%/~._-!$'()*,;:@ ", min_size=16, max_size=64
).filter(lambda s: s.strip() == s and s.strip() != "")
"""Client secrets and tokens, including characters that need URL-encoding."""


@st.composite
def tokens(draw: st.DrawFn) -> Token:
    """Bearer ``Token`` values (RFC 6750 token characters), valid for a while.

    >>> from hypothesis import given
    >>> @given(tokens())
    ... def test_authorization_header(token):
    ...     assert token.authorization.startswith("Bearer ")
    >>> test_authorization_header()
    """
    raw = draw(st.from_regex(r"[A-Za-z0-9\-._~+/]{8,64}=*", fullmatch=True))
    lifetime = draw(st.floats(min_value=60, max_value=86400))
    return Token(
        access_token=Secret(raw),
        token_type="Bearer",  # noqa: S106 - the scheme name, not a secret
        expires_at=draw(st.floats(min_value=1e9, max_value=4e9)),
        lifetime=lifetime,
    )


@st.composite
def school_year_spellings(draw: st.DrawFn) -> tuple[object, int]:
    """``(spelling, end year)``: ``"2526"``, ``"2025-2026"``, ``"2025-26"``, ``"2026"``, ``2026``.

    Example::

        @given(school_year_spellings())
        def test_every_spelling_is_sent_as_the_end_year(spelled):
            spelling, end = spelled
            assert parse_school_year(spelling).unwrap().wire == str(end)
    """
    end = draw(end_years)
    start = end - 1
    # the two-digit form reads 69-99 as 19xx (POSIX %y), so it spells end years to 2069
    compact = [f"{start % 100:02d}{end % 100:02d}"] if end <= 2069 else []
    spelling = draw(
        st.sampled_from(
            [
                *compact,
                f"{start}-{end}",
                f"{start}-{end % 100:02d}",
                str(end),
                end,
            ]
        )
    )
    return spelling, end


@st.composite
def job_specs(draw: st.DrawFn) -> JobSpec:
    """Valid ``JobSpec`` values (not backed by files on disk).

    Example (the README's property test)::

        @given(job_specs())
        def test_only_file_names_are_sent(spec):
            body = json.loads(create_job_request(config, token, spec).body)
            assert body["files"] == {f.key: f.name for f in spec.files}
    """
    keys = draw(st.lists(file_keys, min_size=1, max_size=4, unique=True))
    files = tuple(
        InputFile(key=key, path=f"/data/{name}", name=name, size=draw(st.integers(1, 5 * 1024**3)))
        for key, name in ((key, draw(file_names)) for key in keys)
    )
    params = draw(
        st.dictionaries(
            file_keys.filter(lambda k: k != "API_YEAR"),
            st.text(max_size=30),
            max_size=4,
        )
    )
    return JobSpec(
        partner=draw(codes),
        tenant=draw(codes),
        bundle="assessments/" + draw(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,30}", fullmatch=True)),
        school_year=SchoolYear(end_year=draw(end_years)),
        files=files,
        params=params,
    )


@st.composite
def base_urls(draw: st.DrawFn) -> tuple[str, str, str]:
    """``(runway_base_url spelling, expected base without trailing slash, expected audience)``.

    Example::

        @given(base_urls())
        def test_the_audience_is_the_instance_origin(urls):
            spelled, base, audience = urls
            config = make_config(runway_base_url=spelled, auth_base_url="https://x.prod.us.auth0.com",
                                 client_id="id", client_secret="s", partner_code="ea").unwrap()
            assert config.audience == audience
    """
    host = draw(
        st.from_regex(r"api\.[a-z]{1,10}-(dev|stage|prod)\.runwayloader\.org", fullmatch=True)
    )
    host_cased = draw(st.sampled_from([host, host.upper()]))
    port = draw(st.sampled_from(["", ":443", ":8443"]))
    prefix = draw(st.sampled_from(["", "/runway", "/a/b"]))
    version = draw(st.integers(1, 3))
    slash = draw(st.sampled_from(["", "/"]))
    spelled = f"https://{host_cased}{port}{prefix}/api/v{version}{slash}"
    base = f"https://{host_cased}{port}{prefix}/api/v{version}"
    audience = f"https://{host}{':8443' if port == ':8443' else ''}"
    return spelled, base, audience

"""Flows composed from the steps: ``prepare_job`` and ``load_files``.

``load_files`` is authorize -> create_job -> upload -> start, in ``Result.do``
notation: the first ``Failure`` ends the flow and is returned as it is. A
custom flow is another composition of the same steps (see docs/usage.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from returns.result import Failure, Result

from runway_client.config import RunwayConfig
from runway_client.errors import InputError, RunwayError
from runway_client.files import check_input_files
from runway_client.models import JobSpec, LoadReceipt, Token, make_job_spec
from runway_client.steps import authorize, create_job, start, upload
from runway_client.transport import Transport
from runway_client.wire import load_scopes

__all__ = ["TokenSource", "load_files", "prepare_job"]

TokenSource = Callable[[tuple[str, ...]], Result[Token, RunwayError]]
"""Something that returns a token for the given scopes (a cache, or ``authorize``)."""


def prepare_job(
    *,
    partner: str,
    tenant: str,
    bundle: str,
    school_year: object,
    input_files: object,
    params: Mapping[str, str] | None = None,
) -> Result[JobSpec, RunwayError]:
    """Check everything local (files on disk, school year, names) and build the ``JobSpec``.

    All problems come back together in one ``InputError``, before any request.
    """
    files = check_input_files(input_files)
    spec = make_job_spec(
        partner=partner,
        tenant=tenant,
        bundle=bundle,
        school_year=school_year,
        files=files.value_or(()),
        params=params,
    )
    problems = [
        *(_problems(files.failure()) if isinstance(files, Failure) else ()),
        *(_problems(spec.failure()) if isinstance(spec, Failure) else ()),
    ]
    if problems:
        return Failure(InputError.of(problems))
    return spec


def _problems(error: RunwayError) -> tuple[str, ...]:
    return error.problems if isinstance(error, InputError) and error.problems else (error.message,)


def load_files(
    transport: Transport,
    config: RunwayConfig,
    spec: JobSpec,
    *,
    token_source: TokenSource | None = None,
) -> Result[LoadReceipt, RunwayError]:
    """Load ``spec``: authorize, create the job, upload every file, start it.

    ``token_source`` supplies the token (``RunwayClient`` passes its cache);
    by default a fresh one is fetched with ``authorize``. Returns the
    ``LoadReceipt``, or the first step's ``RunwayError`` (naming the job once
    one exists).
    """
    tokens: TokenSource = token_source or partial(authorize, transport, config)
    return Result.do(
        receipt
        for token in tokens(load_scopes(config.partner_code))
        for job in create_job(transport, config, token, spec)
        for uploaded in upload(transport, job)
        for receipt in start(transport, config, token, uploaded)
    )

"""``RunwayError``: built complete, copied with ``replace``, never changed."""

from __future__ import annotations

import pickle

import pytest

from runway_client import InputError, NotFoundError, RateLimitError, StorageError
from runway_client._errors import RunwayError
from runway_client._models import Job, JobSpec, PendingJob, SchoolYear


def pending() -> PendingJob:
    spec = JobSpec(
        partner="ea", tenant="ea", bundle="b", school_year=SchoolYear(end_year=2026), files=()
    )
    from datetime import UTC, datetime

    job = Job(uid="6f1c", upload_urls={}, spec=spec, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    return PendingJob(job=job)


def fields(error: RunwayError) -> dict[str, object]:
    return {**vars(error), "args": error.args}


def test_replace_returns_a_copy_and_leaves_the_error_as_it_was() -> None:
    error = StorageError(
        "storage refused", step="upload", status=503, code="SlowDown", request_id="4B2"
    )
    before = fields(error)
    copy = error.replace(message="told again", job_uid="6f1c")
    assert fields(error) == before
    assert type(copy) is StorageError
    assert (copy.message, copy.job_uid, copy.code, copy.request_id) == (
        "told again",
        "6f1c",
        "SlowDown",
        "4B2",
    )
    assert str(copy) == ("upload failed (HTTP 503): told again [job 6f1c] [request id 4B2]")


def test_pending_is_given_at_construction_and_names_the_job() -> None:
    made = NotFoundError("gone", step="start", pending=pending())
    assert made.job_uid == "6f1c"
    dropped = made.replace(pending=None)
    assert dropped.pending is None
    assert dropped.job_uid == "6f1c"
    assert made.pending is not None


def test_unknown_fields_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="colour"):
        InputError.of(["x"]).replace(colour="red")


def test_input_errors_keep_every_problem_through_copies_and_pickles() -> None:
    error = InputError.of(["a is bad", "b is bad"])
    assert error.problems == ("a is bad", "b is bad")
    assert error.replace(message="m").problems == error.problems
    back = pickle.loads(pickle.dumps(RateLimitError("slow", step="start", retry_after=3.0)))  # noqa: S301
    assert (type(back), back.retry_after, back.exit_code) == (RateLimitError, 3.0, 16)


def test_every_kind_has_its_own_name_and_exit_code() -> None:
    import runway_client._errors as errors

    kinds = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, RunwayError) and cls is not RunwayError
    ]
    assert len({cls.kind for cls in kinds}) == len(kinds)
    assert "kind" in vars(RateLimitError)

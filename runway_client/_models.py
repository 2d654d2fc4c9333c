"""The values that flow through a load: frozen, keyword-only msgspec Structs.

Type-state (ARCHITECTURE.md): each step's output is the next step's input::

    RunwayConfig ──authorize──▶ Token
    JobSpec + Token ──create_job──▶ Job
    Job ──upload──▶ UploadedJob
    UploadedJob + Token ──start──▶ LoadReceipt

User input is checked here, in constructor functions (``parse_school_year``,
``make_job_spec``) that return ``Result`` with messages naming the input;
msgspec itself checks types only on decode.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Final
from urllib.parse import urlsplit

import msgspec
from returns.result import Failure, Result, Success

from runway_client._defaults import MAX_END_YEAR, MIN_END_YEAR
from runway_client._errors import InputError, RunwayError
from runway_client._redaction import Secret, redact_url

__all__ = [
    "DownloadLinks",
    "DownloadReceipt",
    "InputFile",
    "Job",
    "JobRequest",
    "JobSpec",
    "LoadReceipt",
    "OutputSet",
    "OutputSetQuery",
    "PendingJob",
    "SchoolYear",
    "Token",
    "UploadReceipt",
    "UploadedJob",
    "is_job_uid",
    "is_unicode_text",
    "make_job_spec",
    "make_output_set_query",
    "name_problems",
    "parse_school_year",
    "pending_problems",
]


class SchoolYear(msgspec.Struct, frozen=True, kw_only=True):
    """A school year, held as its end year: 2025-26 is ``SchoolYear(end_year=2026)``.

    ``wire`` is what Runway takes in ``schoolYear`` since Feb 2026 (CONTRACT.md,
    "POST /jobs body"): the 4-digit end year.

    >>> parse_school_year("2526").unwrap().wire
    '2026'
    """

    end_year: int

    @property
    def wire(self) -> str:
        """The 4-digit end year, e.g. ``"2026"``."""
        return f"{self.end_year:04d}"

    @property
    def label(self) -> str:
        """The human spelling, e.g. ``"2025-2026"``."""
        return f"{self.end_year - 1}-{self.end_year}"


_ACCEPTED_YEARS: Final = '"2526", "2025-2026", "2025-26", "2026" or 2026 (all meaning 2025-26)'
_FOUR: Final = re.compile(r"[0-9]{4}")
_RANGE: Final = re.compile(r"([0-9]{4})[-/\u2013]([0-9]{2}|[0-9]{4})")


def parse_school_year(
    value: object, *, name: str = "school_year"
) -> Result[SchoolYear, RunwayError]:
    """Read a school year in any spelling users write; the end year must be 2000-2099.

    Accepted: ``"2026"`` / ``2026`` (the end year), ``"2526"`` (two-digit start and
    end years, the form Runway took until Feb 2026), ``"2025-2026"``, ``"2025-26"``
    (``/`` or an en dash also separate; no spaces inside). A 4-digit string starting with ``20`` is an
    end year; any other 4-digit string must be two consecutive two-digit years, read
    as POSIX ``%y`` reads them (69-99 are 19xx: ``"9899"`` is 1998-99, refused).
    Anything else is ``Failure(InputError)`` naming ``name``.

    >>> [parse_school_year(v).unwrap().wire for v in ("2526", "2025-2026", "2025-26", "2026", 2026)]
    ['2026', '2026', '2026', '2026', '2026']
    >>> print(parse_school_year("2527").failure().message)  # doctest: +ELLIPSIS
    school_year '2527' is not a school year: 25 and 27 are not consecutive years; write ...
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        return _bad_year(name, value, f"expected a string or an int, got {type(value).__name__}")
    if isinstance(value, int) and not 0 <= value <= 9999:
        return _bad_year(name, value, "not a 4-digit year")
    text = str(value).strip(" ")
    end: int | None = None
    if _FOUR.fullmatch(text):
        if text.startswith("20"):
            end = int(text)
        else:
            start2, end2 = int(text[:2]), int(text[2:])
            if end2 != (start2 + 1) % 100:
                return _bad_year(
                    name, value, f"{text[:2]} and {text[2:]} are not consecutive years"
                )
            if end2 < start2:
                return _bad_year(name, value, "a two-digit span cannot cross a century")
            # two-digit years read as POSIX strptime's %y does: 69-99 are 19xx, 00-68 are
            # 20xx; so "9899" is 1998-99 (refused below), never 2098-99
            end = (1900 if start2 >= 69 else 2000) + start2 + 1
    elif match := _RANGE.fullmatch(text):
        start = int(match.group(1))
        written_end = match.group(2)
        if len(written_end) == 4:
            if int(written_end) != start + 1:
                return _bad_year(
                    name, value, f"{start} and {written_end} are not consecutive years"
                )
        elif int(written_end) != (start + 1) % 100:
            return _bad_year(name, value, f"{start} and {written_end} are not consecutive years")
        end = start + 1
    if end is None:
        return _bad_year(name, value, "unrecognised spelling")
    if not MIN_END_YEAR <= end <= MAX_END_YEAR:
        return _bad_year(name, value, f"end year {end} is outside {MIN_END_YEAR}-{MAX_END_YEAR}")
    return Success(SchoolYear(end_year=end))


def _bad_year(name: str, value: object, why: str) -> Result[SchoolYear, RunwayError]:
    try:
        shown = repr(value)
    except ValueError:  # an int too long to print
        shown = "<a very large int>"
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return Failure(
        InputError.of([f"{name} {shown} is not a school year: {why}; write {_ACCEPTED_YEARS}"])
    )


class InputFile(msgspec.Struct, frozen=True, kw_only=True):
    """One local file of a job, as checked before the job is created.

    Attributes:
        key: the bundle's file key (its ``env_var``), e.g. ``"INPUT_FILE"``.
        path: the local path, made absolute at the check (so a resume from another
            folder reads the same file).
        name: the file name sent to Runway: the base name of ``path``.
        size: bytes, at the time of the check; the upload refuses a file that changed.
        mtime_ns: its modification time at the check (nanoseconds since the epoch),
            0 if unknown.
        sha256: hex SHA-256 of its contents as the job was created, kept for a resume
            (``""`` until known): a resume refuses a file whose contents differ.
    """

    key: str
    path: str
    name: str
    size: int
    mtime_ns: int = 0
    sha256: str = ""


class JobSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What the user asks to load: checked, normalised, not yet sent.

    Build it with ``make_job_spec`` (or ``runway_client._pipeline.prepare_job``,
    which also checks the files on disk).
    """

    partner: str
    tenant: str
    bundle: str
    school_year: SchoolYear
    files: tuple[InputFile, ...]
    params: dict[str, str] = msgspec.field(default_factory=dict)

    def file(self, key: str) -> InputFile:
        """The file with ``key`` (``KeyError`` if the spec has none)."""
        for item in self.files:
            if item.key == key:
                return item
        raise KeyError(key)


class JobRequest(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """The JSON body of ``POST /api/v1/jobs``, exactly the fields CONTRACT.md lists.

    >>> msgspec.json.encode(JobRequest(partner="ea", tenant="ea", bundle="assessments/X",
    ...     school_year="2026", files={"INPUT_FILE": "a.csv"}))
    b'{"partner":"ea","tenant":"ea","bundle":"assessments/X","schoolYear":"2026","files":{"INPUT_FILE":"a.csv"}}'
    """

    partner: str
    tenant: str
    bundle: str
    school_year: str
    files: dict[str, str]
    params: dict[str, str] = msgspec.field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: JobSpec) -> JobRequest:
        """The wire body for ``spec``: file names only, the end year."""
        return cls(
            partner=spec.partner,
            tenant=spec.tenant,
            bundle=spec.bundle,
            school_year=spec.school_year.wire,
            files={f.key: f.name for f in spec.files},
            params=dict(spec.params),
        )


def make_job_spec(
    *,
    partner_code: str,
    tenant_code: str,
    bundle_name: str,
    school_year: object,
    files: tuple[InputFile, ...],
    bundle_params: Mapping[str, str] | None = None,
) -> Result[JobSpec, RunwayError]:
    """Check the non-file parts of a job and assemble a ``JobSpec``.

    Every problem is reported in one ``InputError``: empty or non-string
    tenant/bundle, a bad school year, a param key or value that is not a
    non-empty string. ``API_YEAR`` is set by Runway from the school year
    (CONTRACT.md), so it is refused here rather than silently dropped.
    """
    problems: list[str] = []
    for label, value in (
        ("partner_code", partner_code),
        ("tenant_code", tenant_code),
        ("bundle_name", bundle_name),
    ):
        problems.extend(name_problems(label, value))
    year = parse_school_year(school_year)
    if isinstance(year, Failure):
        problems.append(year.failure().message)
    clean_params: dict[str, str] = {}
    if bundle_params is not None and not isinstance(bundle_params, Mapping):
        problems.append(
            f"bundle_params must be a mapping of str to str, got {type(bundle_params).__name__}"
        )
    else:
        for key, value in (bundle_params or {}).items():
            key_problems = name_problems("bundle_params key", key)
            if key_problems:
                problems.extend(key_problems)
            elif key == "API_YEAR":
                problems.append(
                    "bundle_params['API_YEAR'] is set by Runway from school_year; remove it"
                )
            elif not isinstance(value, str):
                problems.append(
                    f"bundle_params[{key!r}] must be a string, got {type(value).__name__} {value!r}"
                )
            elif not is_unicode_text(value):
                problems.append(f"bundle_params[{key!r}] is not valid Unicode text")
            else:
                clean_params[key] = value
    if problems or not isinstance(year, Success):
        return Failure(InputError.of(problems))
    return Success(
        JobSpec(
            partner=partner_code,
            tenant=tenant_code,
            bundle=bundle_name,
            school_year=year.unwrap(),
            files=files,
            params=clean_params,
        )
    )


def name_problems(label: str, value: object, *, spaces: bool = True) -> list[str]:
    """What is wrong with a code or name the user gave (empty list: nothing): the
    one name rule, used for job specs, output-set filters and settings alike.

    It must be a non-empty string of printable, valid Unicode text without
    surrounding whitespace: Runway trims what it stores, which would silently
    change the value. With ``spaces=False`` (a partner code, which becomes an
    OAuth2 scope; a client id) no whitespace at all. ``label`` is the caller's
    own parameter name, so the message names what they wrote.

    >>> name_problems("tenant_code", " ea")
    ["tenant_code ' ea' has surrounding whitespace; remove it"]
    >>> print(name_problems("tenant_code", "e\\x07a")[0])
    tenant_code 'e\\x07a' has control characters or is not valid Unicode text
    """
    if not isinstance(value, str) or not value.strip():
        return [f"{label} must be a non-empty string, got {value!r}"]
    if value != value.strip():
        return [f"{label} {value!r} has surrounding whitespace; remove it"]
    if not value.isprintable() or not is_unicode_text(value):
        return [f"{label} {value!r} has control characters or is not valid Unicode text"]
    if not spaces and any(ch.isspace() for ch in value):
        return [f"{label} {value!r} must not contain spaces (it becomes part of an OAuth2 scope)"]
    return []


_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def is_job_uid(value: object) -> bool:
    """True for a uid Runway could have made: a UUID in its canonical 8-4-4-4-12 hex
    spelling (CONTRACT.md: start answers 400 "uuid is expected" for anything else).

    Only such a uid may become a URL path segment: ``..`` would address another route.

    >>> is_job_uid("3f0e2b1c-0000-4000-8000-000000000001"), is_job_uid("..")
    (True, False)
    """
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def is_unicode_text(text: str) -> bool:
    """True if ``text`` encodes as UTF-8 (no lone surrogates from undecodable bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Token(msgspec.Struct, frozen=True, kw_only=True):
    """An OAuth2 access token (RFC 6749 section 5.1) and when it stops being good.

    Attributes:
        access_token: the bearer token, as a ``Secret``.
        token_type: ``"Bearer"`` (the server's spelling kept).
        expires_at: wall-clock expiry, seconds since the epoch (``time.time()``).
        scope: granted scopes if the server said, else the scopes asked for.
        lifetime: seconds the token was granted for (``expires_in``), 0 if unknown.
    """

    access_token: Secret
    token_type: str
    expires_at: float
    scope: tuple[str, ...] = ()
    lifetime: float = 0.0

    def is_fresh(self, *, leeway: float = 60.0, now: float | None = None) -> bool:
        """True while the token has more than ``leeway`` seconds left (at most a
        quarter of its ``lifetime``, so a short-lived token is still reused)."""
        margin = min(leeway, self.lifetime / 4) if self.lifetime > 0 else leeway
        return (time.time() if now is None else now) < self.expires_at - margin

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value (RFC 6750): ``Bearer <token>``."""
        return f"Bearer {self.access_token.reveal()}"


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A job Runway created: its uid and one presigned S3 PUT URL per file key.

    The URLs are kept exactly as received (never re-encoded); ``repr`` masks
    their signatures. They live one hour (CONTRACT.md, "Presigned S3 URLs").
    """

    uid: str
    upload_urls: dict[str, str]
    spec: JobSpec
    created_at: datetime

    def __repr__(self) -> str:
        urls = {key: redact_url(url) for key, url in self.upload_urls.items()}
        return f"Job(uid={self.uid!r}, upload_urls={urls!r}, spec={self.spec!r}, created_at={self.created_at!r})"


class UploadReceipt(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """What one successful upload sent.

    Attributes:
        key: the file key; ``path``: the local path; ``file_name``: the name sent.
        bytes: bytes sent (equal to the Content-Length).
        sha256: hex SHA-256 of the file, computed while streaming (``None`` when
            the client's ``upload_sha256`` setting is off).
        etag: S3's ``ETag`` header, quotes included, as received.
    """

    key: str
    path: str
    file_name: str
    bytes: int
    sha256: str | None
    etag: str


class UploadedJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job whose every file is uploaded: the only thing ``start`` accepts."""

    job: Job
    receipts: tuple[UploadReceipt, ...]


class LoadReceipt(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """What a finished load returns: the job was created, filled and started.

    The run itself happens on Runway; its status is seen in the Runway UI.

    Attributes:
        job_uid, partner, tenant, bundle: as sent.
        school_year: as sent: the 4-digit end year, e.g. ``"2026"``.
        files: one ``UploadReceipt`` per file.
        created_at, started_at: aware UTC datetimes.
        output_set: the run's ``OutputSet`` when the load waited for it (or found it:
            see ``started_earlier``), else ``None``.
        downloads: the output files downloaded, when the load was asked to.
        started_earlier: ``True`` when this call started nothing: an earlier start of
            the job (whose answer was lost) got through, its run is under way or its
            output set is listed; then ``started_at`` is when that was found.
    """

    job_uid: str
    partner: str
    tenant: str
    bundle: str
    school_year: str
    files: tuple[UploadReceipt, ...]
    params: dict[str, str]
    created_at: datetime
    started_at: datetime
    output_set: OutputSet | None = None
    downloads: tuple[DownloadReceipt, ...] = ()
    started_earlier: bool = False

    @property
    def total_bytes(self) -> int:
        """Bytes uploaded across all files."""
        return sum(f.bytes for f in self.files)

    def to_json(self) -> bytes:
        """The receipt as JSON with camelCase names like Runway's API (``jobUid``,
        ``schoolYear``...): what ``runway-client load --json`` prints."""
        return msgspec.json.encode(self)

    def to_dict(self) -> dict[str, object]:
        """The receipt as plain builtins with ``to_json``'s camelCase names (datetimes as
        ISO 8601 strings): JSON-serializable, what an Airflow task returns to XCom."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: object) -> Result[LoadReceipt, RunwayError]:
        """Read what ``to_dict`` gave (e.g. from XCom); anything else is an ``InputError``."""
        try:
            return Success(msgspec.convert(data, cls))
        except msgspec.ValidationError as exc:
            return Failure(InputError.of([f"not a load receipt written by runway-client: {exc}"]))


AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class OutputSet(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The outputs of one successful run, as ``GET /output-sets`` lists them.

    Only successful runs have one (CONTRACT.md, "Output sets"); ``job_uid`` links it
    to the job that produced it.

    Attributes:
        uid: the output set's uid; ``files``: its file names.
        sent_to_ods: whether the run sent its records to the ODS.
        created_at: aware datetime (UTC).
        school_year: the 4-digit end year, e.g. ``"2026"``.
        bundle: the bundle's path, or ``None`` for a job made without a bundle template
            (the server sends ``null`` then: CONTRACT.md "Output sets").
    """

    uid: str
    files: tuple[str, ...]
    sent_to_ods: bool
    created_at: AwareDatetime
    job_uid: str
    partner: str
    tenant: str
    school_year: str
    bundle: str | None


class OutputSetQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters for ``GET /output-sets``; build it with ``make_output_set_query``."""

    partner: str
    tenant: str | None = None
    school_year: SchoolYear | None = None
    sent_to_ods: bool | None = None
    created_after: datetime | None = None
    bundle: str | None = None


def make_output_set_query(
    *,
    partner_code: object,
    tenant_code: object = None,
    school_year: object = None,
    sent_to_ods: object = None,
    created_after: object = None,
    bundle_name: object = None,
) -> Result[OutputSetQuery, RunwayError]:
    """Check output-set filters; every problem comes back in one ``InputError``.

    ``created_after`` must be an aware ``datetime`` (a naive one is ambiguous);
    ``school_year`` takes any spelling ``parse_school_year`` takes.

    >>> make_output_set_query(partner_code="ea", school_year="2526").unwrap().school_year.wire
    '2026'
    """
    problems: list[str] = []
    for label, value, required in (
        ("partner_code", partner_code, True),
        ("tenant_code", tenant_code, False),
        ("bundle_name", bundle_name, False),
    ):
        if value is not None or required:
            problems.extend(name_problems(label, value))
    year: SchoolYear | None = None
    if school_year is not None:
        parsed = parse_school_year(school_year)
        if isinstance(parsed, Failure):
            problems.append(parsed.failure().message)
        else:
            year = parsed.unwrap()
    if sent_to_ods is not None and not isinstance(sent_to_ods, bool):
        problems.append(f"sent_to_ods must be True, False or None, got {sent_to_ods!r}")
    if created_after is not None and (
        not isinstance(created_after, datetime) or created_after.utcoffset() is None
    ):
        problems.append(
            f"created_after must be a timezone-aware datetime, e.g. "
            f"datetime(2026, 1, 1, tzinfo=timezone.utc); got {created_after!r}"
        )
    elif created_after is not None and not _plausible(created_after):
        problems.append(f"created_after must fall in the years 1970 to 9998, got {created_after!r}")
    if problems:
        return Failure(InputError.of(problems))
    return Success(
        OutputSetQuery(
            partner=partner_code,  # type: ignore[arg-type]
            tenant=tenant_code,  # type: ignore[arg-type]
            school_year=year,
            sent_to_ods=sent_to_ods,  # type: ignore[arg-type]
            created_after=created_after,  # type: ignore[arg-type]
            bundle=bundle_name,  # type: ignore[arg-type]
        )
    )


def _plausible(moment: datetime) -> bool:
    try:
        return 1970 <= moment.astimezone(UTC).year <= 9998
    except (OverflowError, ValueError):
        return False


class DownloadLinks(msgspec.Struct, frozen=True, kw_only=True):
    """Presigned GET URLs for an output set's files (valid up to 1 hour, CONTRACT.md).

    ``repr`` masks the URLs' signatures.
    """

    set_uid: str
    links: dict[str, str]

    def __repr__(self) -> str:
        shown = {name: redact_url(url) for name, url in self.links.items()}
        return f"DownloadLinks(set_uid={self.set_uid!r}, links={shown!r})"


class DownloadReceipt(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One output file on disk.

    Attributes:
        name: the file name in the output set; ``path``: where it is now.
        bytes: its size; ``sha256``: hex SHA-256 of its bytes, as stored.
        skipped: ``True`` if it was already there with the same size and was kept.
    """

    name: str
    path: str
    bytes: int
    sha256: str
    skipped: bool = False


class PendingJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job that was created but not started: what ``pipeline.resume`` needs.

    ``receipts`` are the files already uploaded; the rest are uploaded by the
    resume, then the job is started. Upload URLs live one hour from creation
    (CONTRACT.md, "Presigned S3 URLs"): after that the job cannot be finished.

    Its JSON (``to_json``) holds the presigned upload URLs, signatures included:
    keep the file private, like a password, until the job is finished.
    """

    job: Job
    receipts: tuple[UploadReceipt, ...] = ()

    def __repr__(self) -> str:
        return f"PendingJob(job={self.job!r}, receipts={self.receipts!r})"

    def to_json(self) -> bytes:
        """The pending job as JSON, for ``from_json`` (``runway-client resume``)."""
        return msgspec.json.encode(self)

    def to_dict(self) -> dict[str, object]:
        """The pending job as plain builtins (str, int, dict, list): what Airflow's XCom or
        a JSON store keeps. Holds the presigned upload URLs: keep it private.
        ``from_dict`` reads it back."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: object) -> Result[PendingJob, RunwayError]:
        """Read what ``to_dict`` gave; anything else is an ``InputError``."""
        try:
            pending = msgspec.convert(data, cls)
        except msgspec.ValidationError as exc:
            return Failure(InputError.of([f"not a pending job written by runway-client: {exc}"]))
        return _checked(pending)

    @classmethod
    def from_json(cls, data: bytes | str) -> Result[PendingJob, RunwayError]:
        """Read what ``to_json`` wrote; a damaged file is an ``InputError`` naming each
        damaged field (``pending_problems``), so nothing odd ever reaches a request."""
        try:
            pending = _PENDING_DECODER.decode(data)
        except (msgspec.DecodeError, RecursionError) as exc:
            why = exc if isinstance(exc, msgspec.DecodeError) else "JSON nested too deeply"
            return Failure(InputError.of([f"not a pending job written by runway-client: {why}"]))
        return _checked(pending)


def _plain(value: msgspec.Struct) -> dict[str, object]:
    """``value`` as JSON's builtins (dict, list, str, int, float, bool, None)."""
    plain: dict[str, object] = msgspec.json.decode(msgspec.json.encode(value))
    return plain


def _checked(pending: PendingJob) -> Result[PendingJob, RunwayError]:
    """``pending`` if every field is sound (``pending_problems``), else an ``InputError``
    naming each damaged field."""
    problems = pending_problems(pending)
    if problems:
        return Failure(InputError.of([f"the pending job is damaged: {p}" for p in problems]))
    return Success(pending)


_PENDING_DECODER: Final = msgspec.json.Decoder(PendingJob)
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")


def pending_problems(pending: PendingJob) -> list[str]:
    """Every damaged field of a pending job read from a file, named by its JSON path
    (``job.uid``, ``job.upload_urls['INPUT_FILE']`` ...); an empty list when sound.

    Checked: the uid is a UUID; upload URLs are one per file, absolute http(s) URLs
    that parse; paths are absolute text without NUL; sizes 1 byte to 5 GiB; names,
    codes and params as ``make_job_spec`` wants them; receipts of the job's files.
    """
    job, spec = pending.job, pending.job.spec
    problems: list[str] = []
    if not is_job_uid(job.uid):
        problems.append(f"job.uid {_short(job.uid)} is not a job uid (a UUID)")
    for label, value in (
        ("partner", spec.partner),
        ("tenant", spec.tenant),
        ("bundle", spec.bundle),
    ):
        problems.extend(name_problems(f"job.spec.{label}", value))
    if not MIN_END_YEAR <= spec.school_year.end_year <= MAX_END_YEAR:
        problems.append(
            f"job.spec.school_year.end_year {spec.school_year.end_year} is out of range"
        )
    for key, value in spec.params.items():
        problems.extend(name_problems("job.spec.params key", key))
        if not is_unicode_text(value):
            problems.append(f"job.spec.params[{_short(key)}] is not valid Unicode text")
    keys = [f.key for f in spec.files]
    if not keys or len(set(keys)) != len(keys):
        problems.append("job.spec.files must list each file key once")
    for index, item in enumerate(spec.files):
        where = f"job.spec.files[{index}]"
        problems.extend(name_problems(f"{where}.key", item.key))
        if "\x00" in item.path or (
            not item.path.startswith("/") and not _windows_absolute(item.path)
        ):
            problems.append(f"{where}.path {_short(item.path)} is not an absolute path without NUL")
        elif not item.name or item.path.replace("\\", "/").rsplit("/", 1)[-1] != item.name:
            problems.append(f"{where}.name {_short(item.name)} is not the base name of its path")
        if not 1 <= item.size <= 5 * 1024**3:
            problems.append(f"{where}.size {item.size} is not 1 byte to 5 GiB")
        if item.mtime_ns < 0:
            problems.append(f"{where}.mtime_ns {item.mtime_ns} is negative")
        if item.sha256 and not _SHA256_HEX.fullmatch(item.sha256):
            problems.append(f"{where}.sha256 is not a hex SHA-256")
    if sorted(job.upload_urls) != sorted(keys):
        problems.append("job.upload_urls do not match job.spec.files (one URL per file key)")
    for key, url in job.upload_urls.items():
        where = f"job.upload_urls[{_short(key)}]"
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            problems.append(f"{where} is not a valid URL ({exc})")
            continue
        if parts.scheme not in ("http", "https") or not parts.hostname or not url.isprintable():
            problems.append(f"{where} is not an absolute http(s) URL")
    sizes = {f.key: f.size for f in spec.files}
    seen: set[str] = set()
    for index, receipt in enumerate(pending.receipts):
        where = f"receipts[{index}]"
        if receipt.key not in sizes or receipt.key in seen:
            problems.append(f"{where}.key {_short(receipt.key)} is not a file of the job, once")
        elif receipt.bytes != sizes[receipt.key]:
            problems.append(f"{where}.bytes {receipt.bytes} is not the file's size")
        if receipt.sha256 is not None and not _SHA256_HEX.fullmatch(receipt.sha256):
            problems.append(f"{where}.sha256 is not a hex SHA-256")
        seen.add(receipt.key)
    return problems


def _windows_absolute(path: str) -> bool:
    return len(path) > 2 and path[0].isalpha() and path[1] == ":" and path[2] in "\\/"


def _short(value: str) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."

"""Local file checks and streaming upload bodies."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from runway_client._errors import InputChangedError, InputError
from runway_client._files import (
    HASH_BLOCK_BYTES,
    MAX_UPLOAD_BYTES,
    DownloadFile,
    FileHasher,
    FollowingSha256,
    check_input_file,
    check_input_files,
    open_upload_body,
    output_file_name,
    prepare_destination,
)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_good_file_gives_its_base_name_and_size(tmp_path: Path) -> None:
    path = write(tmp_path / "sat.csv", b"a,b\n1,2\n")
    checked = check_input_file("INPUT_FILE", path).unwrap()
    assert (checked.key, checked.name, checked.size, checked.path) == (
        "INPUT_FILE",
        "sat.csv",
        8,
        str(path),
    )


def test_str_paths_and_symlinks_to_files_are_accepted(tmp_path: Path) -> None:
    target = write(tmp_path / "real.csv", b"x")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert check_input_file("K", str(link)).unwrap().name == "link.csv"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: d / "missing.csv", "no such file; check the path"),
        (lambda d: d, "is a directory"),
        (lambda d: write(d / "empty.csv", b""), "is empty (0 bytes)"),
    ],
)
def test_bad_files_name_the_key_and_the_path(tmp_path: Path, make, says: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    error = check_input_file("INPUT_FILE", path).failure()
    assert isinstance(error, InputError)
    assert error.message.startswith(f"input_files['INPUT_FILE'] = {str(path)!r}")
    assert says in error.message


def test_a_fifo_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    assert "not a regular file" in check_input_file("K", fifo).failure().message


def test_over_five_gib_is_refused_before_any_request(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate(MAX_UPLOAD_BYTES + 1)  # sparse: no disk used
    error = check_input_file("K", big).failure()
    assert "over S3's single-upload limit" in error.message
    assert str(MAX_UPLOAD_BYTES + 1) in error.message


def test_an_unreadable_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "secret.csv", b"x")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: give it the refusal other users get
        real_open = open

        def refusing(file: object, *args: object, **kwargs: object) -> object:
            if os.fspath(file) == str(path):  # type: ignore[call-overload]
                raise PermissionError(13, "Permission denied")
            return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr("builtins.open", refusing)
    assert "not readable" in check_input_file("K", path).failure().message


@pytest.mark.parametrize("bad", [b"/bytes/path.csv", 42, None])
def test_paths_must_be_text_or_pathlike(bad: object) -> None:
    assert "must be a str or os.PathLike path" in check_input_file("K", bad).failure().message


def test_every_bad_file_is_reported_at_once(tmp_path: Path) -> None:
    good = write(tmp_path / "good.csv", b"x")
    error = check_input_files(
        {"A": good, "B": tmp_path / "nope.csv", "C": tmp_path, "": good}
    ).failure()
    assert isinstance(error, InputError)
    assert len(error.problems) == 3
    assert "input_files['B']" in error.message
    assert "input_files['C']" in error.message
    assert "input_files key ''" in error.message


@pytest.mark.parametrize(("given", "says"), [({}, "is empty"), ([("K", "p")], "must be a mapping")])
def test_input_files_must_be_a_non_empty_mapping(given: object, says: str) -> None:
    assert says in check_input_files(given).failure().message


def test_upload_body_streams_exactly_the_checked_bytes_and_hashes_them(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    source = check_input_file("K", write(tmp_path / "d.bin", data)).unwrap()
    with open_upload_body(source).unwrap() as body:
        assert len(body) == len(data)
        chunks = []
        while chunk := body.read(1024 * 1024):
            chunks.append(chunk)
        assert max(len(c) for c in chunks) == 1024 * 1024
        assert b"".join(chunks) == data
        assert body.finish().unwrap().sha256 == hashlib.sha256(data).hexdigest()


def test_a_file_that_changed_size_since_the_check_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", b"12345")
    source = check_input_file("K", path).unwrap()
    path.write_bytes(b"123")
    error = open_upload_body(source).failure()
    assert isinstance(error, InputChangedError)
    assert "changed size since it was checked (5 -> 3 bytes)" in error.message


def test_a_file_that_shrinks_mid_upload_raises_from_read(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", b"x" * 100)
    source = check_input_file("K", path).unwrap()
    with open_upload_body(source).unwrap() as body:
        assert body.read(10) == b"x" * 10
        os.truncate(path, 20)
        assert body.read(10) == b"x" * 10
        with pytest.raises(InputChangedError, match="got shorter while being uploaded"):
            body.read(10)


def test_a_file_that_grows_mid_upload_fails_finish(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", b"x" * 10)
    source = check_input_file("K", path).unwrap()
    with open_upload_body(source).unwrap() as body:
        assert body.read() == b"x" * 10
        with open(path, "ab") as f:
            f.write(b"more")
        assert "changed size while being uploaded" in body.finish().failure().message


def test_the_hasher_reads_its_own_offsets_and_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(2 * HASH_BLOCK_BYTES + 12345)  # blocks, and a partial last one
    path = write(tmp_path / "d.bin", data)
    with open(path, "rb", buffering=0) as file:
        file.seek(777)  # the caller's position is not the hasher's business
        digests = FileHasher(file.fileno(), len(data), sha256=True, md5=True).result()
        assert file.tell() == 777
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.md5 == hashlib.md5(data).hexdigest()  # noqa: S324 - S3's ETag is MD5


def test_sha256_and_md5_are_hashed_on_threads_of_their_own(tmp_path: Path) -> None:
    """With verify_etag a load takes the slower of the two digests, not their sum."""
    data = os.urandom(64 * HASH_BLOCK_BYTES)
    path = write(tmp_path / "d.bin", data)
    with open(path, "rb", buffering=0) as file:
        hasher = FileHasher(file.fileno(), len(data), sha256=True, md5=True)
        hashing = [t for t in threading.enumerate() if t.name == "runway-hash"]
        digests = hasher.result()
    assert len(hashing) == 2
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.md5 == hashlib.md5(data).hexdigest()  # noqa: S324 - S3's ETag is MD5
    assert not any(t.is_alive() for t in hashing)


def test_the_hasher_fails_on_a_file_shorter_than_announced(tmp_path: Path) -> None:
    path = write(tmp_path / "d.bin", b"z" * 100)
    with open(path, "rb") as file, pytest.raises(OSError, match="ended after 100 of 101"):
        FileHasher(file.fileno(), 101, sha256=True).result()


def test_without_checksums_no_digest_is_computed(tmp_path: Path) -> None:
    path = write(tmp_path / "d.bin", b"abc")
    source = check_input_file("K", path).unwrap()
    with open_upload_body(source, sha256=False).unwrap() as body:
        assert body.read() == b"abc"
        digests = body.finish().unwrap()
    assert (digests.sha256, digests.md5) == (None, None)


def test_a_body_sent_from_its_descriptor_counts_what_the_transport_reports(
    tmp_path: Path,
) -> None:
    data = os.urandom(5 * 1024 * 1024 + 3)
    source = check_input_file("K", write(tmp_path / "d.bin", data)).unwrap()
    with open_upload_body(source, md5=True).unwrap() as body:
        sent = b""
        while len(sent) < len(body):  # what a transport sending from fileno() does
            block = os.pread(body.fileno(), 1024 * 1024, len(sent))
            sent += block
            body.sent(len(block))
        assert body.bytes_sent == len(data)
        digests = body.finish().unwrap()
    assert sent == data
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.md5 == hashlib.md5(data).hexdigest()  # noqa: S324


def test_a_file_rewritten_in_place_with_the_same_size_mid_upload_is_refused(
    tmp_path: Path,
) -> None:
    """The hasher reads the file on its own, so the sent bytes and the hashed ones
    could come from two versions of it: any write after the open is refused."""
    data = b"a" * 1000
    path = write(tmp_path / "d.csv", data)
    source = check_input_file("K", path).unwrap()
    with open_upload_body(source).unwrap() as body:
        assert body.read(500) == data[:500]
        time.sleep(0.05)  # past the file system's timestamp granularity
        with open(path, "r+b") as file:
            file.seek(600)
            file.write(b"b" * 10)  # same size, other content
        assert body.read() == b"a" * 100 + b"b" * 10 + b"a" * 390
        error = body.finish().failure()
    assert isinstance(error, InputChangedError)
    assert "was modified" in error.message
    assert "input_files['K']" in error.message


def test_the_following_hasher_hashes_what_was_written_as_it_is_written(tmp_path: Path) -> None:
    pieces = [os.urandom(n) for n in (10, HASH_BLOCK_BYTES + 5, 3, 2 * HASH_BLOCK_BYTES)]
    descriptor = os.open(tmp_path / "out.bin", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        hasher = FollowingSha256(descriptor)
        for piece in pieces:
            os.write(descriptor, piece)
            hasher.advance(len(piece))
            time.sleep(0.01)  # let it catch up sometimes, lag behind other times
        assert hasher.hexdigest() == hashlib.sha256(b"".join(pieces)).hexdigest()
        stopped = FollowingSha256(descriptor)
        stopped.advance(5)
        stopped.close()  # a discarded download: the thread ends, nothing waits
    finally:
        os.close(descriptor)


# ---------------------------------------------------------------- downloads


@pytest.mark.parametrize("name", ["../x.jsonl", "a/b.jsonl", "..", ".", "", "a\\b", "nul\x00.csv"])
def test_server_file_names_must_be_plain_base_names(name: str) -> None:
    error = output_file_name(name).failure()
    assert isinstance(error, InputError)
    assert "not a plain file name" in error.message


def test_a_download_is_renamed_into_place_only_when_committed(tmp_path: Path) -> None:
    final = tmp_path / "out.jsonl"
    with DownloadFile(final) as target:
        assert target.begin({"content-length": "6"})
        target.write(b"abc")
        assert not final.exists()
        assert target.temp is not None
        assert target.temp.parent == tmp_path
        assert target.temp.name.startswith(".runway-")  # hidden, and short whatever the name
        target.write(b"def")
        assert target.commit().unwrap() == hashlib.sha256(b"abcdef").hexdigest()
    assert final.read_bytes() == b"abcdef"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_an_abandoned_download_leaves_nothing_behind(tmp_path: Path) -> None:
    final = tmp_path / "out.jsonl"
    final.write_bytes(b"old contents")

    def interrupted() -> None:
        with DownloadFile(final, overwrite=True) as target:
            target.begin({"content-length": "99"})
            target.write(b"partial")
            raise RuntimeError("connection lost")

    with pytest.raises(RuntimeError):
        interrupted()
    assert final.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_a_file_already_there_is_kept_only_when_its_bytes_are_the_same(tmp_path: Path) -> None:
    """Issue 11 item 2: decided by content (the ETag as MD5, or SHA-256), never by size."""
    final = write(tmp_path / "out.jsonl", b"123456")
    same = '"' + hashlib.md5(b"123456", usedforsecurity=False).hexdigest() + '"'
    other = (
        '"' + hashlib.md5(b"X23456", usedforsecurity=False).hexdigest() + '"'
    )  # same size, first byte differs
    with DownloadFile(final) as target:
        assert not target.begin({"content-length": "6", "etag": same})
        assert target.skipped
    for headers in ({"content-length": "6", "etag": other}, {"content-length": "7", "etag": other}):
        with DownloadFile(final) as target, pytest.raises(InputError, match="already exists"):
            target.begin(headers)
    assert final.read_bytes() == b"123456"  # never replaced
    with DownloadFile(final) as target:  # a multipart ETag: compared after the download
        assert target.begin({"content-length": "6", "etag": '"abc-2"'})
        target.write(b"X23456")
        refused = target.commit().failure()
    assert "already exists" in refused.message
    assert final.read_bytes() == b"123456"
    with DownloadFile(final) as target:
        assert target.begin({"content-length": "6"})
        target.write(b"123456")
        assert target.commit().unwrap() == hashlib.sha256(b"123456").hexdigest()
        assert target.skipped
    with DownloadFile(final, overwrite=True) as target:
        assert target.begin({"content-length": "6", "etag": other})
        target.write(b"X23456")
        target.commit().unwrap()
    assert final.read_bytes() == b"X23456"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary file left


def test_a_directory_where_an_output_file_goes_gets_a_true_hint(tmp_path: Path) -> None:
    (tmp_path / "out.jsonl").mkdir()
    for overwrite in (False, True):
        target = DownloadFile(tmp_path / "out.jsonl", overwrite=overwrite)
        with target, pytest.raises(InputError) as caught:
            target.begin({"content-length": "6"})
        assert "is a directory" in caught.value.message
        assert "free space" not in caught.value.message


def test_stale_temporary_downloads_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    """Issue 11 item 9: a download killed with kill -9 leaves .runway-<hex>.part."""
    import fcntl

    from runway_client._files import remove_stale_parts

    stale = write(tmp_path / ".runway-0123456789abcdef.part", b"half")
    live = write(tmp_path / ".runway-fedcba9876543210.part", b"half")
    mine = write(tmp_path / ".runway-notours.part", b"keep")
    other = write(tmp_path / "data.part", b"keep")
    (tmp_path / ".runway-00000000000000aa.part").symlink_to(other)
    with open(live, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # a download still writing it
        assert remove_stale_parts(tmp_path) == 1
    assert not stale.exists()
    assert live.exists()
    assert mine.exists()
    assert other.read_bytes() == b"keep"


def test_prepare_destination_creates_folders_and_refuses_files(tmp_path: Path) -> None:
    assert prepare_destination(tmp_path / "a" / "b").unwrap() == tmp_path / "a" / "b"
    blocker = write(tmp_path / "file", b"x")
    assert "is not a directory" in prepare_destination(blocker).failure().message


@pytest.mark.parametrize(
    ("name", "says"),
    [
        (" sat.csv", "surrounding whitespace, which Runway trims"),
        ("sat.csv ", "surrounding whitespace, which Runway trims"),
        ("sat\n.csv", "control characters"),
        ("sat\udcff.csv", "not UTF-8"),
    ],
)
def test_file_names_runway_would_change_or_could_not_take_are_refused(
    tmp_path: Path, name: str, says: str
) -> None:
    path = os.fsencode(tmp_path) + b"/" + os.fsencode(name)
    with open(path, "wb") as f:
        f.write(b"x")
    error = check_input_file("K", os.fsdecode(path)).failure()
    assert says in error.message


def test_a_nul_in_the_path_is_an_input_error() -> None:
    assert "NUL" in check_input_file("K", "sat\x00.csv").failure().message


def test_a_file_replaced_by_a_pipe_after_the_check_does_not_hang(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", b"x")
    source = check_input_file("K", path).unwrap()
    path.unlink()
    os.mkfifo(path)
    assert "no longer a regular file" in open_upload_body(source).failure().message


@pytest.mark.parametrize("name", ["a\x1b[2Jb.jsonl", "line\nbreak.jsonl", "x" * 256])
def test_server_names_with_control_characters_or_too_long_are_refused(name: str) -> None:
    assert "not a plain file name" in output_file_name(name).failure().message


def test_a_content_length_that_is_not_ascii_digits_does_not_crash_begin(tmp_path: Path) -> None:
    final = write(tmp_path / "out.jsonl", b"12")
    with DownloadFile(final) as target:
        assert target.begin({"content-length": "\u00b2"})  # not a size: fetch it

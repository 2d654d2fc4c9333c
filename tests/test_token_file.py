"""``FileTokenCache``: one token for many processes, in an owner-only file under a lock."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from runway_client import FileTokenCache, RunwayClient, make_config
from runway_client.sandbox import Sandbox

SCOPES = ("create:jobs", "partner:ea")


def settings(sandbox: Sandbox) -> dict[str, Any]:
    return {
        "runway_base_url": sandbox.runway_base_url,
        "auth_base_url": sandbox.auth_base_url,
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "partner_code": sandbox.partner_code,
    }


def cache_for(sandbox: Sandbox, directory: Path) -> FileTokenCache:
    return FileTokenCache(make_config(**settings(sandbox)).unwrap(), directory=directory)


def test_two_caches_share_one_token(sandbox: Sandbox, tmp_path: Path) -> None:
    first = cache_for(sandbox, tmp_path / "tokens")(SCOPES).unwrap()
    second = cache_for(sandbox, tmp_path / "tokens")(SCOPES).unwrap()
    assert second.access_token == first.access_token
    assert sandbox.received("token") == 1


def test_the_file_and_folder_are_owner_only_and_hold_no_secret(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    cache = cache_for(sandbox, tmp_path / "tokens")
    cache(SCOPES).unwrap()
    path = cache.path_for(SCOPES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sandbox.client_secret not in path.read_text()
    assert "tokens" in repr(cache)
    assert sandbox.client_secret not in repr(cache)


def test_a_rejected_token_is_replaced(sandbox: Sandbox, tmp_path: Path) -> None:
    cache = cache_for(sandbox, tmp_path / "tokens")
    first = cache(SCOPES).unwrap()
    cache(SCOPES, rejected=first).unwrap()
    assert sandbox.received("token") == 2
    cache(SCOPES).unwrap()  # the new one is shared again
    assert sandbox.received("token") == 2


def test_an_expiring_token_is_refreshed(tmp_path: Path) -> None:
    with Sandbox(token_lifetime=2.0) as sandbox:
        cache = cache_for(sandbox, tmp_path / "tokens")
        cache(SCOPES).unwrap()
        cache(SCOPES).unwrap()  # 2 s lifetime: a quarter (0.5 s) is the margin, still fresh
        assert sandbox.received("token") == 1
        time.sleep(2.1)
        cache(SCOPES).unwrap()
        assert sandbox.received("token") == 2


def test_a_file_others_may_read_is_not_trusted(sandbox: Sandbox, tmp_path: Path) -> None:
    cache = cache_for(sandbox, tmp_path / "tokens")
    cache(SCOPES).unwrap()
    path = cache.path_for(SCOPES)
    path.chmod(0o644)
    cache(SCOPES).unwrap()
    assert sandbox.received("token") == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_client_uses_it(sandbox: Sandbox, tmp_path: Path, sat_csv: Path) -> None:
    for _ in range(3):
        with RunwayClient(
            runway_base_url=sandbox.runway_base_url,
            auth_base_url=sandbox.auth_base_url,
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
            partner_code=sandbox.partner_code,
            token_cache=cache_for(sandbox, tmp_path / "tokens"),
        ) as client:
            client.load_files(
                "ea",
                "assessments/PSAT_SAT",
                {"INPUT_FILE": str(sat_csv)},
                {"TEST_TYPE": "SAT"},
                "2526",
            )
    assert len(sandbox.jobs()) == 3
    assert sandbox.received("token") == 1


def test_processes_share_one_token(sandbox: Sandbox, tmp_path: Path) -> None:
    code = (
        "import sys, json; from runway_client import FileTokenCache, make_config; "
        "s = json.loads(sys.argv[1]); "
        "c = FileTokenCache(make_config(**s).unwrap(), directory=sys.argv[2]); "
        "c(('create:jobs', 'partner:ea')).unwrap()"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(settings(sandbox)), str(tmp_path / "t")]
        )
        for _ in range(4)
    ]
    assert [run.wait(timeout=120) for run in runs] == [0, 0, 0, 0]
    assert sandbox.received("token") == 1


def test_an_unusable_folder_still_gives_a_token(sandbox: Sandbox, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    cache = cache_for(sandbox, blocked / "tokens")
    assert cache(SCOPES).unwrap().token_type == "Bearer"


def test_other_credentials_never_get_the_shared_token(sandbox: Sandbox, tmp_path: Path) -> None:
    cache = cache_for(sandbox, tmp_path / "tokens")
    cache(SCOPES).unwrap()
    wrong = FileTokenCache(
        make_config(**{**settings(sandbox), "client_secret": "wrong"}).unwrap(),
        directory=tmp_path / "tokens",
    )
    assert wrong.path_for(SCOPES) != cache.path_for(SCOPES)
    assert wrong(SCOPES).failure().kind == "authentication"

"""runway_client.airflow in real Apache Airflow: DAGs run with ``dag.test()`` against a
sandbox through an ``AIRFLOW_CONN_RUNWAY_DEFAULT`` connection (edu_edfi_airflow's shape)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow", reason="Apache Airflow is not installed (see .ci/run)")

from airflow.sdk import DAG

from runway_client.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[1]
SAT = REPO / "examples" / "sat.csv"


def connection(sandbox: Sandbox, **changes: str) -> str:
    fields: dict[str, Any] = {
        "conn_type": "runway",
        "host": sandbox.runway_base_url,
        "login": sandbox.client_id,
        "password": sandbox.client_secret,
        "extra": {
            "extra__runway__auth_base_url": sandbox.auth_base_url,
            "extra__runway__partner_code": sandbox.partner_code,
        },
    }
    fields.update(changes)
    return json.dumps(fields)


@pytest.fixture
def airflow_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Task state and shared tokens in this test's own folders."""
    monkeypatch.setenv("RUNWAY_AIRFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def runway(sandbox: Sandbox, airflow_env: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.setenv("AIRFLOW_CONN_RUNWAY_DEFAULT", connection(sandbox))
    return sandbox


def sat_copy(folder: Path, name: str = "sat.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.copyfile(SAT, target)
    return target


def the_dag(dag_id: str) -> DAG:
    from tests_airflow.dags import runway_dags

    found = {d.dag_id: d for d in vars(runway_dags).values() if isinstance(d, DAG)}
    return found[dag_id]


def states(run: Any) -> dict[tuple[str, int], tuple[str, int]]:
    """(task id, map index) -> (state, try number) of a finished ``dag.test()`` run."""
    return {
        (ti.task_id, ti.map_index): (str(ti.state), ti.try_number)
        for ti in run.get_task_instances()
    }


def xcom(run: Any, task_id: str, map_index: int = -1) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(
                dag_id=run.dag_id,
                run_id=run.run_id,
                task_id=task_id,
                map_index=map_index,
                key="return_value",
            )
            .one()
        )
        value = row.value
    return json.loads(value) if isinstance(value, str) else value


@pytest.mark.parametrize(
    "dag_id",
    ["runway_load_sense_download", "runway_load_poke_download"],
    ids=["deferred", "poking"],
)
def test_load_then_sensor_then_download(runway: Sandbox, airflow_env: Path, dag_id: str) -> None:
    source = sat_copy(airflow_env / "in")
    dest = airflow_env / "out"
    run = the_dag(dag_id).test(
        run_conf={"input_files": {"INPUT_FILE": str(source)}, "dest": str(dest)}
    )
    assert str(run.state) == "success", states(run)
    (job,) = runway.jobs()
    assert job.started
    assert job.school_year == "2026"
    receipt = xcom(run, "load")
    assert receipt["jobUid"] == job.uid
    assert receipt["files"][0]["sha256"]
    (output_set,) = runway.output_sets()
    assert xcom(run, "outputs")["uid"] == output_set.uid
    assert sorted(p.name for p in dest.iterdir()) == sorted(output_set.files)


def test_a_mapped_load_over_five_files(runway: Sandbox, airflow_env: Path) -> None:
    folder = airflow_env / "five"
    for number in range(5):
        sat_copy(folder, f"sat_{number}.csv")
    run = the_dag("runway_mapped_load").test(run_conf={"data_dir": str(folder)})
    assert str(run.state) == "success", states(run)
    jobs = runway.jobs()
    assert len(jobs) == 5
    assert all(job.started for job in jobs)
    assert sorted(job.files["INPUT_FILE"] for job in jobs) == [f"sat_{n}.csv" for n in range(5)]
    uids = {xcom(run, "load", index)["jobUid"] for index in range(5)}
    assert uids == {job.uid for job in jobs}
    assert runway.received("token") == 1  # one token shared by the five task processes


@pytest.mark.parametrize(
    ("route", "fault"),
    [("upload", {"status": 500, "times": 4}), ("start", {"status": 400, "times": 1})],
    ids=["uploads-fail", "start-refused"],
)
def test_a_retried_load_finishes_its_one_job(
    runway: Sandbox, airflow_env: Path, route: str, fault: dict[str, int]
) -> None:
    source = sat_copy(airflow_env / "in")
    runway.inject(route, "status", **fault)  # the first try fails after the job exists
    run = the_dag("runway_retried_load").test(run_conf={"input_files": {"INPUT_FILE": str(source)}})
    assert states(run)[("load", -1)] == ("success", 2)
    assert runway.received("create_job") == 1
    (job,) = runway.jobs()
    assert job.started
    assert job.uploaded_bytes == {"INPUT_FILE": source.stat().st_size}
    assert xcom(run, "load")["jobUid"] == job.uid


def test_a_retry_after_a_lost_start_answer_does_not_run_the_job_twice(
    runway: Sandbox, airflow_env: Path
) -> None:
    """Issue 15 item 2: the first try's start got through, its answer was lost and its
    run could not be looked for; the run ends; the next try finds its output set and
    sends no second start (Runway would run the job again)."""
    source = sat_copy(airflow_env / "in")
    runway.inject("start", "reset_before_answer")
    runway.inject("output_sets", "status", status=500, times=4)  # the first try's look
    run = the_dag("runway_retried_load").test(run_conf={"input_files": {"INPUT_FILE": str(source)}})
    assert states(run)[("load", -1)] == ("success", 2)
    (job,) = runway.jobs()
    assert runway.received("start") == 1
    assert runway.runs(job.uid) == ("succeeded",)
    receipt = xcom(run, "load")
    assert receipt["jobUid"] == job.uid
    assert receipt["startedEarlier"] is True


def test_a_load_started_before_its_try_failed_is_not_loaded_again(
    airflow_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Sandbox(run_delay=4.0) as slow:  # the first try's 3 s wait ends before the run
        monkeypatch.setenv("AIRFLOW_CONN_RUNWAY_DEFAULT", connection(slow))
        source = sat_copy(airflow_env / "in")
        dest = airflow_env / "out"
        run = the_dag("runway_waiting_load").test(
            run_conf={"input_files": {"INPUT_FILE": str(source)}, "dest": str(dest)}
        )
        assert states(run)[("load", -1)] == ("success", 2)
        assert slow.received("create_job") == 1
        (job,) = slow.jobs()
        receipt = xcom(run, "load")
        assert receipt["jobUid"] == job.uid
        assert receipt["outputSet"]["jobUid"] == job.uid
        assert [d["name"] for d in receipt["downloads"]] == list(receipt["outputSet"]["files"])


def test_the_hooks_test_connection(runway: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from runway_client.airflow import RunwayHook

    ok, message = RunwayHook().test_connection()
    assert ok, message
    assert "ea" in message
    monkeypatch.setenv("AIRFLOW_CONN_RUNWAY_DEFAULT", connection(runway, password="wrong"))
    ok, message = RunwayHook().test_connection()
    assert not ok
    assert "wrong" not in message


def test_bare_extras_and_edu_edfi_airflows_get_runway_client(
    runway: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runway_client.airflow import RunwayHook

    bare = {"auth_base_url": runway.auth_base_url, "partner_code": "ea"}
    monkeypatch.setenv("AIRFLOW_CONN_RUNWAY_OTHER", connection(runway, extra=bare))  # type: ignore[arg-type]
    assert RunwayHook("runway_other").get_runway_client().verify_token() == ("ea",)


def test_airflow_knows_the_provider() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "runway-client" in manager.providers
    assert "runway" in manager.hooks
    hook = manager.hooks["runway"]
    assert hook is not None
    assert hook.hook_class_name == "runway_client.airflow.hooks.RunwayHook"


def test_the_connection_form_has_the_runway_fields() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    fields = {
        name for name in manager.connection_form_widgets if name.startswith("extra__runway__")
    }
    assert fields == {
        f"extra__runway__{name}"
        for name in ("auth_base_url", "partner_code", "token_url", "audience")
    }
    behaviour = manager.field_behaviours["runway"]
    assert set(behaviour["hidden_fields"]) == {"schema", "port"}
    assert behaviour["relabeling"]["host"] == "Runway base URL"


def test_the_sensor_times_out_saying_the_run_may_have_failed(
    airflow_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runway_client.airflow import RunwayOutputSetSensor
    from runway_client.airflow.triggers import RunwayOutputSetTrigger

    with Sandbox(failing_file_names=["bad.csv"]) as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_RUNWAY_DEFAULT", connection(sandbox))
        from runway_client import RunwayClient

        with RunwayClient(
            runway_base_url=sandbox.runway_base_url,
            auth_base_url=sandbox.auth_base_url,
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
            partner_code="ea",
        ) as client:
            receipt = client.load_files(
                "ea",
                "assessments/PSAT_SAT",
                {"INPUT_FILE": str(sat_copy(airflow_env / "in", "bad.csv"))},
                {"TEST_TYPE": "SAT"},
                "2526",
            )
        assert sandbox.wait_for_run(receipt.job_uid) == "failed"
        import asyncio
        import time

        trigger = RunwayOutputSetTrigger(
            job_uid=receipt.job_uid,
            runway_conn_id="runway_default",
            poll_interval=0.2,
            deadline=time.time() + 1.0,
        )

        async def first_event() -> Any:
            async for event in trigger.run():
                return event.payload
            return None

        event = asyncio.run(first_event())
        assert event["status"] == "timeout"
        assert "may still be running, or may have failed" in event["message"]
        sensor = RunwayOutputSetSensor(task_id="s", job_uid=receipt.job_uid, timeout=1)
        from runway_client.airflow._airflow import AirflowSensorTimeout

        with pytest.raises(AirflowSensorTimeout, match="may have failed"):
            sensor.execute_complete({}, event)  # type: ignore[arg-type]


KILLED_TRY = """
import sys
from types import SimpleNamespace
from runway_client.airflow import RunwayLoadOperator

op = RunwayLoadOperator(task_id="load", tenant_code="ea", bundle_name="assessments/PSAT_SAT",
                        input_files={"INPUT_FILE": sys.argv[1]}, bundle_params={"TEST_TYPE": "SAT"},
                        school_year="2526")
ti = SimpleNamespace(dag_id="d", task_id="load", run_id="r", map_index=-1)
op.execute({"ti": ti})
"""


def test_a_try_killed_mid_upload_is_finished_by_the_next(
    runway: Sandbox, airflow_env: Path
) -> None:
    import subprocess
    import sys
    import time
    from types import SimpleNamespace

    from runway_client.airflow import RunwayLoadOperator

    big = airflow_env / "in" / "big.csv"
    big.parent.mkdir(parents=True)
    big.write_bytes(SAT.read_bytes() + b"\n".join(b"x,1,2" for _ in range(200_000)) + b"\n")
    runway.throttle_uploads(256 * 1024)  # the upload takes several seconds
    killed = subprocess.Popen([sys.executable, "-c", KILLED_TRY, str(big)])
    try:
        deadline = time.monotonic() + 120
        while not runway.jobs():
            assert time.monotonic() < deadline, "the first try made no job"
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        killed.kill()  # SIGKILL: no on_kill, no cleanup
        killed.wait(timeout=30)
    (job,) = runway.jobs()
    assert not runway.job(job.uid).started
    runway.throttle_uploads(None)
    op = RunwayLoadOperator(
        task_id="load",
        tenant_code="ea",
        bundle_name="assessments/PSAT_SAT",
        input_files={"INPUT_FILE": str(big)},
        bundle_params={"TEST_TYPE": "SAT"},
        school_year="2526",
    )
    ti = SimpleNamespace(dag_id="d", task_id="load", run_id="r", map_index=-1)
    receipt = op.execute({"ti": ti})  # type: ignore[arg-type]
    assert receipt["jobUid"] == job.uid
    assert runway.received("create_job") == 1
    assert len(runway.jobs()) == 1
    assert runway.job(job.uid).started
    again = op.execute({"ti": ti})  # type: ignore[arg-type]
    assert again == receipt  # a third try: the saved receipt, nothing new
    assert runway.received("create_job") == 1

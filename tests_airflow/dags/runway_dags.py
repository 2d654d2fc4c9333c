"""DAGs that tests_airflow/test_dags.py runs with ``dag.test()`` against a sandbox.

Inputs come from the run's params (``render_template_as_native_obj`` keeps the
mappings mappings); the connection is ``runway_default`` (``AIRFLOW_CONN_RUNWAY_DEFAULT``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from runway_client.airflow import RunwayHook, RunwayLoadOperator, RunwayOutputSetSensor

START = datetime(2026, 1, 1)
SAT = {"TEST_TYPE": "SAT"}


def load_sense_download(dag_id: str, *, deferrable: bool) -> DAG:
    """load -> sensor (deferrable or poking) -> download."""
    with DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        render_template_as_native_obj=True,
        params={"input_files": {}, "dest": ""},
    ) as dag:
        load = RunwayLoadOperator(
            task_id="load",
            tenant_code="ea",
            bundle_name="assessments/PSAT_SAT",
            input_files="{{ params.input_files }}",
            bundle_params=SAT,
            school_year="2526",
        )
        sense = RunwayOutputSetSensor(
            task_id="outputs",
            job_uid="{{ ti.xcom_pull(task_ids='load')['jobUid'] }}",
            deferrable=deferrable,
            poke_interval=0.5,
            timeout=60,
        )

        @task
        def download(output_set: dict[str, Any], dest: str) -> list[str]:
            client = RunwayHook().get_conn()
            return [r.path for r in client.download(output_set["uid"], dest)]

        fetched = download(sense.output, "{{ params.dest }}")
        load >> sense >> fetched
    return dag


deferred = load_sense_download("runway_load_sense_download", deferrable=True)
poking = load_sense_download("runway_load_poke_download", deferrable=False)


with DAG(
    "runway_mapped_load",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"data_dir": ""},
) as mapped:

    @task
    def files_in(data_dir: str) -> list[dict[str, str]]:
        return [{"INPUT_FILE": str(p)} for p in sorted(Path(data_dir).glob("*.csv"))]

    RunwayLoadOperator.partial(
        task_id="load",
        tenant_code="ea",
        bundle_name="assessments/PSAT_SAT",
        bundle_params=SAT,
        school_year="2025-2026",
    ).expand(input_files=files_in("{{ params.data_dir }}"))


with DAG(
    "runway_retried_load",
    schedule=None,
    start_date=START,
    catchup=False,
    render_template_as_native_obj=True,
    params={"input_files": {}, "wait": False},
) as retried:
    RunwayLoadOperator(
        task_id="load",
        tenant_code="ea",
        bundle_name="assessments/PSAT_SAT",
        input_files="{{ params.input_files }}",
        bundle_params=SAT,
        school_year="2526",
        retries=2,
        retry_delay=timedelta(seconds=0),
    )


with DAG(
    "runway_waiting_load",
    schedule=None,
    start_date=START,
    catchup=False,
    render_template_as_native_obj=True,
    params={"input_files": {}, "dest": ""},
) as waiting:
    RunwayLoadOperator(
        task_id="load",
        tenant_code="ea",
        bundle_name="assessments/PSAT_SAT",
        input_files="{{ params.input_files }}",
        bundle_params=SAT,
        school_year="2526",
        wait_for_outputs=3,
        download_to="{{ params.dest }}",
        poll_interval=0.2,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )

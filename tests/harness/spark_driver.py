"""A driver program for tests on the standalone cluster (tests/harness/spark_cluster.py), run as its own
process: ``python spark_driver.py SCENARIO SETTINGS_JSON``; prints one JSON line with what happened.

Scenarios: ``race`` (two write_partitions with one run id, at once), ``speculation`` (partition 1's first
attempt held back until the run is committed, its bytes differing from the speculative copy's), ``big``
(partitions large enough to go up as multipart uploads; a hook lets the test kill a worker mid-upload),
``plain`` (one write, for the authentication settings).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time


def session(conf: dict, extra: dict):
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    builder = SparkSession.builder.appName("ml-analytics-cluster-test")
    for k, v in {**conf, **extra}.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def main() -> None:
    scenario, settings = sys.argv[1], json.loads(sys.argv[2])
    from ml_analytics.spark import write_partitions

    cfg, marks = settings["config"], settings["marks"]
    out: dict = {}
    if scenario == "race":
        spark = session(settings["conf"], {})
        df = spark.range(0, 4000, numPartitions=2).selectExpr("id", "id % 7 as seven")
        results: dict = {}
        start = threading.Barrier(2)

        def run(name):
            start.wait()
            try:
                m = write_partitions(df, "race", config=cfg, run_id="the-same-id")
                results[name] = {"ok": True, "keys": m.keys, "rows": m.rows}
            except Exception as e:
                results[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}

        threads = [threading.Thread(target=run, args=(n,)) for n in ("one", "two")]
        [t.start() for t in threads]
        [t.join() for t in threads]
        out = results
    elif scenario == "speculation":
        spark = session(settings["conf"], {
            "spark.speculation": "true", "spark.speculation.interval": "100ms", "spark.speculation.quantile": "0.5",
            "spark.speculation.multiplier": "1.5", "spark.speculation.minTaskRuntime": "1s",
            "spark.python.task.killTimeout": "120s"})  # the loser's Python worker lives on past its kill
        from pyspark.sql.functions import udf
        from pyspark.sql.types import IntegerType

        def attempt_of(_x):
            from pyspark import TaskContext

            return TaskContext.get().attemptNumber()

        df = spark.range(0, 2000, numPartitions=2).withColumn("attempt", udf(attempt_of, IntegerType())("id"))
        committed = os.path.join(marks, "committed")

        def hold_the_first_attempt(partition, attempt, stage):
            if partition == 1 and attempt == 0 and stage == "serialized":
                with open(os.path.join(marks, "loser-started"), "w"):
                    pass
                deadline = time.time() + 90
                while not os.path.exists(committed) and time.time() < deadline:
                    time.sleep(0.2)
            if partition == 1 and stage == "uploaded":
                with open(os.path.join(marks, f"uploaded-{attempt}"), "w"):
                    pass

        # the commit waits at most 10 s for attempts Spark is killing, then goes ahead without them
        m = write_partitions(df, "spec", config=cfg, _task_hook=hold_the_first_attempt, _attempts_timeout=10)
        with open(committed, "w"):
            pass
        deadline = time.time() + 60  # keep the application up while the loser uploads after the commit
        while time.time() < deadline and not os.path.exists(os.path.join(marks, "uploaded-0")):
            time.sleep(0.2)
        out = {"manifest": m.to_dict()}
    elif scenario == "big":
        spark = session(settings["conf"], {"spark.task.maxFailures": "4"})
        df = spark.range(0, 300_000, numPartitions=2).selectExpr("id", "repeat('x', 90) as pad")

        def stall_mid_upload(partition, attempt, stage):
            if partition == 0 and attempt == 0 and stage == "streaming":
                with open(os.path.join(marks, "streaming"), "w") as fh:
                    fh.write(os.environ.get("SPARK_LOCAL_IP", ""))
                time.sleep(120)  # the test kills this worker now

        m = write_partitions(df, "big", config=cfg, _task_hook=stall_mid_upload)
        out = {"manifest": m.to_dict()}
    else:
        spark = session(settings["conf"], {})
        m = write_partitions(spark.range(0, 1000, numPartitions=2).selectExpr("id"), "plain", config=cfg)
        out = {"manifest": m.to_dict()}
    print(json.dumps(out))
    spark.stop()


if __name__ == "__main__":
    main()

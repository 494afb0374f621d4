"""An ml-analytics Spark job without the CLI: read project reports, aggregate, write, ingest.

    pip install 'ml-analytics-cloud[spark,aws]'     # plus the extras of your stores
    python examples/spark-job/job.py --config config.ini

It reads newline-delimited JSON project rows (default: examples/data/sl_projects.json), counts
projects and tasks per day, program, district and status, and lets every executor write its
partition of the result straight to every store configured in config.ini
(``write_partitions``). Druid then ingests exactly the objects the run's manifest lists, and the
datasource's row count is checked against the manifest. With no ``[DRUID] batch_url`` the task
JSON is written to druid-tasks/ and not submitted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_INPUT = HERE.parent / "data" / "sl_projects.json"
SPEC = HERE / "sl-project-summary.json"


def summarise(df):
    """Projects and tasks per day, program, district and status."""
    from pyspark.sql import functions as F

    return (df.withColumn("day", F.date_format(F.to_timestamp("project_updated_date"), "yyyy-MM-dd'T'00:00:00'Z'"))
              .groupBy("day", "program_id", "program_name", "district_name", "status_of_project")
              .agg(F.countDistinct("project_id").alias("projects"), F.sum("task_count").alias("tasks")))


def run(spark, input_path: str, prefix: str, config=None, partitions: int = 4, ingest: bool = True):
    """The job: returns (manifest, Druid outcome or None)."""
    from ml_analytics.spark import ingest_manifest, write_partitions

    summary = summarise(spark.read.json(str(input_path))).repartition(partitions)
    manifest = write_partitions(summary, prefix, config=config, compression=None)
    print(f"wrote {manifest.rows} rows in {len(manifest.objects)} objects; manifest {manifest.uri}")
    if not ingest:
        return manifest, None
    outcome = ingest_manifest(manifest, spec=json.loads(SPEC.read_text()), config=config)
    print(f"druid: {outcome.status}, {outcome.rows} rows (expected {outcome.expected_rows}); task JSON {outcome.spec_path}")
    return manifest, outcome


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(DEFAULT_INPUT), help="NDJSON file or folder of project rows")
    parser.add_argument("--prefix", default="summaries/sl-project", help="key prefix; the run id goes under it")
    parser.add_argument("--config", default=None, help="config.ini (default: $ML_ANALYTICS_CONFIG, ./config.ini)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--no-ingest", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this interpreter (local mode)

    from pyspark.sql import SparkSession

    from ml_analytics.errors import MLAnalyticsError

    spark = SparkSession.builder.master(args.master).appName("sl-project-summary").getOrCreate()
    try:
        _, outcome = run(spark, args.input, args.prefix, args.config, ingest=not args.no_ingest)
    except MLAnalyticsError as e:
        print(f"sl-project-summary: error: {e}", file=sys.stderr)
        return e.exit_code
    finally:
        spark.stop()
    return 0 if outcome is None or outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())

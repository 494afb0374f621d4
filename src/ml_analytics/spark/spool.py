"""The JVM side of a partition: each row's JSON written to a local file inside the executor's JVM.

The rows of a partition never cross to Python one by one. :file:`jvm/PartitionSpool.java` runs in
each task, in the JVM: it streams the partition's rows through Spark's own JSON generator (the one
``to_json`` and ``DataFrame.toJSON`` use, with the session's time zone and settings), one line each,
into a temporary file of the executor's local folders (Spark's block manager folders,
which go with the executor) and hands the Python worker a single record, ``PATH<TAB>ROWS<TAB>BYTES``.
The worker reads the file in blocks (:class:`.partition.SpooledRows`), checksums and uploads it. The
file is removed once read, and by the JVM when the task ends, whatever it ended of (a failure, a kill).

The class is compiled on the driver by Janino, the Java compiler Spark itself uses for generated
code (in every Spark distribution), packed into a jar in a private temporary folder and sent to the
executors with ``SparkContext.addJar``: no JDK, no binary in the wheel. Once per SparkContext.
Measured: this spends the CPU of the jobs' own path (``df.write.json`` to a local file, then an
upload) where rows framed one by one to Python spent 1.6-2x that (docs/performance.md).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import zipfile
from importlib import resources

from ..errors import MLAnalyticsError, one_line

CLASS = "ml_analytics.spark.PartitionSpool"
_lock = threading.Lock()


class SpoolUnavailable(MLAnalyticsError):
    """The driver's JVM could not compile or ship PartitionSpool (no Janino, a refused jar, ...)."""


def java_source() -> str:
    return resources.files(__package__).joinpath("jvm", "PartitionSpool.java").read_text(encoding="utf-8")


def _compile_and_ship(sc):
    jvm = sc._jvm
    folder = tempfile.mkdtemp(prefix="ml-analytics-jvm-")
    atexit.register(shutil.rmtree, folder, True)
    try:
        compiler = jvm.org.codehaus.janino.SimpleCompiler()
        compiler.setParentClassLoader(sc._jsc.sc().getClass().getClassLoader())
        compiler.cook(java_source())
        jar = os.path.join(folder, "ml-analytics-spool.jar")
        with zipfile.ZipFile(jar, "w") as z:
            z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
            for name, code in compiler.getBytecodes().items():
                z.writestr(name.replace(".", "/") + ".class", bytes(code))
        sc._jsc.addJar(jar)
        return compiler.getClassLoader().loadClass(CLASS)
    except Exception as e:  # py4j's errors carry the Java exception's text: one line of it
        text = str(getattr(e, "java_exception", "") or e)
        raise SpoolUnavailable(f"cannot compile the JVM-side partition writer with Spark's Janino: "
                               f"{one_line(text, 300)}") from None


def spool_class(sc):
    """PartitionSpool, compiled and shipped once per SparkContext (kept on it, as is a failure to)."""
    with _lock:
        found = getattr(sc, "_ml_analytics_spool", None)
        if found is None:
            try:
                found = _compile_and_ship(sc)
            except SpoolUnavailable as e:
                found = e
            sc._ml_analytics_spool = found
    if isinstance(found, SpoolUnavailable):
        raise found
    return found


def spooled_partitions(df):
    """A JavaRDD of one ``PATH<TAB>ROWS<TAB>BYTES`` record per partition of ``df``, each written by its task."""
    from pyspark.sql import functions as F

    df.select(F.to_json(F.struct("*")))  # the schema check to_json makes, on the driver (analysis only)
    session = df.sparkSession
    jdf = df._jdf
    fn = spool_class(session.sparkContext).newInstance().configure(
        jdf.schema(), session.conf.get("spark.sql.session.timeZone"))
    return jdf.queryExecution().toRdd().toJavaRDD().mapPartitions(fn)

"""A local Spark session (master local[2]) for the Spark tests, one per test module.

The JVM is a child process of the test run; the fixture stops the session, shuts the gateway
down and makes sure the JVM process is gone (killing it by its pid if it lingers).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    try:
        import pyspark  # noqa: F401
    except ImportError:  # a failure, not a skip: the dev extra installs pyspark
        pytest.fail("the Spark tests need pyspark: pip install -e '.[dev]' (or '.[spark]')")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("lea-ai-audit-tests")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.default.parallelism", "2")
               .config("spark.driver.memory", "1g")
               .config("spark.executor.memory", "1g")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    gateway = SparkContext._gateway
    proc: subprocess.Popen[bytes] | None = getattr(gateway, "proc", None)
    try:
        yield session
    finally:
        session.stop()
        try:
            if gateway is not None:
                gateway.shutdown()
        finally:
            SparkContext._gateway = None
            SparkContext._jvm = None
            if proc is not None:
                if proc.stdin is not None:
                    proc.stdin.close()  # the gateway JVM exits when its stdin closes
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()  # this test run's own JVM, by its pid
                    proc.wait(timeout=15)
                assert proc.poll() is not None, f"the Spark JVM (pid {proc.pid}) is still running"

"""A real Apache Druid for the tests in this folder: assembled with Maven once, started once a session.

The first run lays out Druid from Maven Central (``tests/druid/pom.xml``, reusing ``~/.m2``) into
``~/.cache/ml-analytics-druid/`` and needs Java 17 and ``mvn``; later runs reuse the layout.
Druid's S3 client points at the session's SeaweedFS and its Azure client at the session's Azurite.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def real_druid(seaweed, azurite, tmp_path_factory):
    from harness.druid import DruidCluster, assemble
    from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY

    cluster = DruidCluster(workdir=tmp_path_factory.mktemp("druid"), layout=assemble(),
                           s3=(seaweed.endpoint, seaweed.access_key, seaweed.secret_key),
                           azure=(AZURITE_ACCOUNT, AZURITE_KEY, azurite.port))
    cluster.start(timeout=300)
    print(f"\nreal Druid started in {cluster.start_seconds:.1f} s")
    yield cluster
    cluster.stop()

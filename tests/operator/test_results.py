"""The documented way to read a status URI with pandas (docs/operator.md), against the real MinIO; and
`s1mple results` argument handling."""

from __future__ import annotations

import pandas as pd
import pytest

from s1mple.cli.results import endpoint_for, parse_target
from s1mple_engine.config import ConfigError


@pytest.mark.cluster
def test_read_parquet_through_pyarrow_s3_filesystem(kube_cluster, s3_client, s3_bucket):
    from pyarrow import fs

    frame = pd.DataFrame({"rank": [1, 2], "sharpe_ratio": [1.25, 0.5]})
    s3_client.put_object(
        Bucket=s3_bucket, Key="research/x/results.parquet", Body=frame.to_parquet(index=False)
    )
    s3 = fs.S3FileSystem(
        endpoint_override=kube_cluster.s3_endpoint,
        access_key=kube_cluster.s3_access_key,
        secret_key=kube_cluster.s3_secret_key,
        region="us-east-1",
    )
    uri = f"s3://{s3_bucket}/research/x/results.parquet"  # as status.results.table gives it
    read = pd.read_parquet(uri.removeprefix("s3://"), filesystem=s3)
    pd.testing.assert_frame_equal(read, frame)


@pytest.mark.parametrize(
    "text, kind, name",
    [
        ("optimization/a", "Optimization", "a"),
        ("Optimization/a", "Optimization", "a"),
        ("opt/a", "Optimization", "a"),
        ("optimizations/a", "Optimization", "a"),
        ("vt/b", "VariantTest", "b"),
        ("varianttest/b", "VariantTest", "b"),
    ],
)
def test_parse_target(text, kind, name):
    t = parse_target(text)
    assert (t.kind, t.name) == (kind, name)


@pytest.mark.parametrize(
    "text", ["a", "job/a", "optimization/", "optimization/a/b", "opt/..", "opt/a..b", "opt/A", "opt/a?x=1"]
)
def test_parse_target_rejects(text):
    with pytest.raises(ConfigError, match="KIND/NAME"):
        parse_target(text)


def test_endpoint_order(monkeypatch):
    storage = {"endpoint": "http://minio.minio.svc:9000", "externalEndpoint": "https://s3.example"}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://env:9000")
    assert endpoint_for(storage, "http://flag:9000") == "http://flag:9000"
    assert endpoint_for(storage, None) == "https://s3.example"
    assert endpoint_for({"endpoint": storage["endpoint"]}, None) == "http://env:9000"
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert endpoint_for({"endpoint": storage["endpoint"]}, None) == storage["endpoint"]

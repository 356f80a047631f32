"""Reports of results in S3 (the test MinIO): rebuilt from an s3:// prefix, and a clear error for a
prefix that does not exist."""

from __future__ import annotations

import pytest

from s1mple.cli import main

pytestmark = pytest.mark.cluster


@pytest.fixture
def s3_env(kube_cluster, monkeypatch):
    for key, value in kube_cluster.env.items():
        if key.startswith("AWS_") or key == "S1MPLE_S3_ENDPOINT":
            monkeypatch.setenv(key, value)


def test_report_of_an_s3_prefix(results, s3_bucket, s3_client, s3_env, tmp_path, capsys):
    for path in sorted(results["vt"].rglob("*")):
        if path.is_file():
            key = f"team/vt/{path.relative_to(results['vt']).as_posix()}"
            s3_client.put_object(Bucket=s3_bucket, Key=key, Body=path.read_bytes())
    out = tmp_path / "vt.html"
    assert main(["report", f"s3://{s3_bucket}/team/vt", "--out", str(out)]) == 0
    assert "variant-equity" in out.read_text()
    assert main(["report", f"s3://{s3_bucket}/team/vt"]) == 0  # written back beside result.json
    assert s3_client.head_object(Bucket=s3_bucket, Key="team/vt/report.html")["ContentLength"] > 1e6


def test_s3_prefix_that_does_not_exist(s3_bucket, s3_env, capsys):
    assert main(["report", f"s3://{s3_bucket}/no/such/prefix"]) == 2
    err = capsys.readouterr().err
    assert f"s3://{s3_bucket}/no/such/prefix" in err and "does not exist" in err

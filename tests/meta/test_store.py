"""The result store: file:// now, s3:// against the test cluster's MinIO, and unreachable endpoints."""

from __future__ import annotations

import os
import time

import pytest

from s1mple_engine.runs import RecordWriter, read_records
from s1mple_engine.store import (
    FileStore,
    S3Store,
    StoreError,
    default_location,
    open_store,
    safe_name,
    unique_names,
)


def exercise(store):
    store.probe()
    store.put_bytes("a/b.bin", b"\x00\x01")
    assert store.get_bytes("a/b.bin") == b"\x00\x01"
    assert store.exists("a/b.bin") and not store.exists("a/c.bin")
    store.put_json("x.json", {"k": [1, 2]})
    assert store.get_json("x.json") == {"k": [1, 2]}
    store.put_jsonl("results/p1.jsonl", [{"run_id": "1"}, {"run_id": "2"}])
    store.put_jsonl("results/p2.jsonl", [{"run_id": "3"}])
    assert store.list_keys("results/") == ["results/p1.jsonl", "results/p2.jsonl"]
    assert [r["run_id"] for r in read_records(store)] == ["1", "2", "3"]
    assert "a/b.bin" in store.list_keys()
    with pytest.raises(KeyError):
        store.get_bytes("nope")
    store.delete("a/b.bin")
    assert not store.exists("a/b.bin")
    for bad in ("../x", "/abs", "a//b", "a/./b", ""):
        with pytest.raises(ValueError):
            store.put_bytes(bad, b"")


def test_file_store(tmp_path):
    store = open_store(f"file://{tmp_path}/out")
    assert isinstance(store, FileStore)
    exercise(store)
    # no temp files left behind
    assert not [p for p in (tmp_path / "out").rglob(".tmp-*")]


def test_file_store_write_is_atomic(tmp_path, monkeypatch):
    store = FileStore(tmp_path)
    store.put_bytes("k", b"old")

    def broken_write(*a, **k):
        raise OSError("disk full")

    import s1mple_engine.store as mod

    monkeypatch.setattr(mod.os, "replace", broken_write)
    with pytest.raises(OSError):
        store.put_bytes("k", b"new")
    assert store.get_bytes("k") == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]


def test_open_store_forms(tmp_path):
    assert isinstance(open_store(str(tmp_path)), FileStore)
    s3 = open_store("s3://my-bucket/some/prefix/", endpoint_url="http://127.0.0.1:1")
    assert isinstance(s3, S3Store) and s3.bucket == "my-bucket" and s3.prefix == "some/prefix"
    with pytest.raises(StoreError):
        open_store("gs://x/y")
    with pytest.raises(StoreError):
        open_store("s3://Bad_Bucket/x")


def test_safe_names_are_sanitised_and_bounded():
    assert safe_name("FVG Parameter Sweep") == "FVG_Parameter_Sweep"
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("") == "unnamed"
    long = safe_name("x" * 500)
    assert len(long) <= 100 and long != safe_name("x" * 499)
    names = unique_names(["a b", "a_b", "c"])
    assert len(set(names.values())) == 3 and names["c"] == "c"
    assert default_location("My Sweep!") == os.path.join("runs", "My_Sweep")


def test_unreachable_s3_fails_fast_naming_endpoint_and_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    store = open_store("s3://results/sweeps", endpoint_url="http://127.0.0.1:9")
    t0 = time.monotonic()
    with pytest.raises(StoreError) as e:
        store.probe()
    assert time.monotonic() - t0 < 30
    text = str(e.value)
    assert "http://127.0.0.1:9" in text and "AWS_ENDPOINT_URL" in text and "AWS_ACCESS_KEY_ID" in text


def test_endpoint_from_environment(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio.local:9000")
    assert open_store("s3://bucket-a/p").endpoint_url == "http://minio.local:9000"


def test_record_writer_batches_and_falls_back(tmp_path):
    store = FileStore(tmp_path / "main")
    w = RecordWriter(store, max_batch=3, max_delay=60)
    for i in range(7):
        w.add({"run_id": str(i), "curves": {"big": 1}})
    assert len(store.list_keys("results/")) == 2  # two full batches written, one record pending
    w.flush()
    recs = read_records(store)
    assert [r["run_id"] for r in recs] == [str(i) for i in range(7)] and "curves" not in recs[0]

    class Down(FileStore):
        def put_bytes(self, key, data):
            raise StoreError("endpoint down")

    fallback = FileStore(tmp_path / "local")
    w = RecordWriter(Down(tmp_path / "x"), fallback=fallback, max_batch=2)
    for i in range(3):
        w.add({"run_id": str(i)})
    w.flush()
    assert [r["run_id"] for r in read_records(fallback)] == ["0", "1", "2"]
    assert len(w.fallback_keys) == 2 and "endpoint down" in w.errors[0]


@pytest.mark.cluster
def test_s3_store_against_minio(kube_cluster, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", kube_cluster.s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", kube_cluster.s3_access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", kube_cluster.s3_secret_key)
    monkeypatch.setenv("AWS_REGION", kube_cluster.s3_region)
    store = open_store(f"s3://{s3_bucket}/sweeps/one")
    exercise(store)
    # a missing bucket is a clear probe error
    with pytest.raises(StoreError, match="bucket exists"):
        open_store(f"s3://{s3_bucket}-missing/x").probe()


def test_jsonl_rows_share_keys_and_survive_a_torn_line(tmp_path):
    store = FileStore(tmp_path)
    store.put_jsonl("p.jsonl", [{"run_id": "a", "metrics": {"x": 1}}, {"run_id": "b", "metrics": {"x": 2}}])
    a, b = store.iter_jsonl("p.jsonl")
    assert (a["run_id"], b["metrics"]) == ("a", {"x": 2})
    assert next(iter(a)) is next(iter(b))  # one key string for all rows: half the memory of 10k records
    store.put_bytes("t.jsonl", b'{"run_id": "a"}\n{"run_id": "b", "met\n{"run_id": "c"}\n')
    assert [r["run_id"] for r in store.iter_jsonl("t.jsonl")] == ["a", "c"]


def test_s3_failures_are_storage_errors_and_bugs_stay_bugs():
    """What botocore raises is a StoreError naming the endpoint; anything else propagates as itself (a
    programming error must not be reported as StorageUnavailable)."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    class Client:
        def __init__(self, exc):
            self.exc = exc

        def put_object(self, **_):
            raise self.exc

        get_object = head_object = delete_object = put_object

    refused = EndpointConnectionError(endpoint_url="http://127.0.0.1:9/b")
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")
    for exc in (refused, denied):
        store = S3Store("bucket", "p", endpoint_url="http://127.0.0.1:9", client=Client(exc))
        with pytest.raises(StoreError, match=r"cannot write k to s3://bucket/p at endpoint http://127\.0\.0\.1:9"):
            store.put_bytes("k", b"x")
    missing = ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")
    with pytest.raises(KeyError):
        S3Store("bucket", "", client=Client(missing)).get_bytes("k")
    bug = S3Store("bucket", "", client=Client(TypeError("put_object() got an unexpected keyword")))
    with pytest.raises(TypeError):
        bug.put_bytes("k", b"x")
    with pytest.raises(TypeError):
        bug.exists("k")

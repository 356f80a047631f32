"""`s1mple results KIND/NAME`: a cluster resource's results on this machine, and its top table.

Reads the resource's status through your kubeconfig, downloads the result files its status names from
storage, and prints the best runs (an Optimization) or the variants side by side (a VariantTest).

Storage endpoint, first found: --endpoint, spec.storage.externalEndpoint (the address users reach from
outside the cluster), $AWS_ENDPOINT_URL, spec.storage.endpoint.  Credentials: $AWS_ACCESS_KEY_ID and
$AWS_SECRET_ACCESS_KEY when set, else the Secret the resource names, read with *your* identity (so only
when you may read it).  Exit codes: 0 done, 1 storage problem, 2 no such resource or no results yet.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s1mple_engine.config import ConfigError

FORMATS = ("parquet", "csv", "json")
#: What Kubernetes allows in a resource or namespace name; checked before either reaches a URL or a path.
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "results",
        help="fetch a cluster resource's results and print its top table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "resource", metavar="KIND/NAME", help="optimization/NAME or varianttest/NAME (or opt/, vt/)"
    )
    p.add_argument("-n", "--namespace", help="default: the kubeconfig context's namespace")
    p.add_argument("--out", metavar="DIR", help="where the files go (default: ./results/<namespace>/<name>)")
    p.add_argument(
        "--format", choices=FORMATS, default="parquet", help="of the results table (default parquet)"
    )
    p.add_argument("--endpoint", metavar="URL", help="S3 endpoint reachable from this machine")
    p.add_argument("--top", type=int, default=10, metavar="N", help="rows of the printed table (default 10)")
    p.add_argument("--report", action="store_true", help="also fetch the HTML report and open it")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Target:
    kind: str
    plural: str
    name: str


def parse_target(text: str) -> Target:
    """``optimization/x``, ``optimizations/x``, ``opt/x``, ``Optimization/x``; the same for VariantTest."""
    from s1mple.kube.resources import KINDS

    kind_text, sep, name = text.partition("/")
    for kind, info in KINDS.items():
        spellings = {kind.lower(), info["plural"], info["singular"], *info["short"]}
        if kind_text.lower() in spellings and sep and _NAME.fullmatch(name) and ".." not in name:
            return Target(kind, info["plural"], name)
    raise ConfigError(f"{text!r}: expected KIND/NAME, e.g. optimization/my-sweep or varianttest/my-race")


def endpoint_for(storage: dict[str, Any], override: str | None) -> str | None:
    """The endpoint a user outside the cluster reaches (see the module docstring for the order)."""
    return (
        override
        or storage.get("externalEndpoint")
        or os.environ.get("AWS_ENDPOINT_URL")
        or storage.get("endpoint")
    )


def credentials(api: Any, namespace: str, storage: dict[str, Any]) -> tuple[dict[str, str], str]:
    """boto3 keyword arguments and where they came from: the environment, else the resource's Secret read
    with the caller's own identity (a 403 says so; the controller's rights are never used)."""
    from s1mple.executors.apiserver import ApiError

    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return {}, "$AWS_ACCESS_KEY_ID"  # boto3 reads them itself
    ref = storage.get("credentialsSecretRef")
    if not ref:
        return {}, "boto3's default chain (no credentialsSecretRef)"
    id_key = ref.get("accessKeyIdKey", "AWS_ACCESS_KEY_ID")
    secret_key = ref.get("secretAccessKeyKey", "AWS_SECRET_ACCESS_KEY")
    try:
        secret = api.get(f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}")
    except ApiError as exc:
        raise ConfigError(
            f"cannot read Secret {namespace}/{ref['name']} (storage.credentialsSecretRef): "
            f"HTTP {exc.status}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to credentials for it"
        ) from None
    import base64

    data = secret.get("data") or {}
    missing = [k for k in (id_key, secret_key) if k not in data]
    if missing:
        raise ConfigError(f"Secret {namespace}/{ref['name']} has no key(s) {missing}")
    return {
        "aws_access_key_id": base64.b64decode(data[id_key]).decode(),
        "aws_secret_access_key": base64.b64decode(data[secret_key]).decode(),
    }, f"Secret {namespace}/{ref['name']}"


def open_location(
    uri: str, endpoint: str | None, creds: dict[str, str], region: str | None
) -> tuple[Any, str]:
    """The store holding ``s3://bucket/key`` and the key in it."""
    import boto3
    from botocore.config import Config

    from s1mple_engine.store import S3Store

    if not uri.startswith("s3://"):
        raise ConfigError(f"result location {uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3}),
        **creds,
    )
    return S3Store(bucket, "", endpoint_url=endpoint, client=client), key


def write_table(data: bytes, fmt: str, out: Path) -> Path:
    """results.parquet as is, or converted to CSV / JSON records."""
    if fmt == "parquet":
        path = out / "results.parquet"
        path.write_bytes(data)
        return path
    import pandas as pd

    frame = pd.read_parquet(io.BytesIO(data))
    path = out / f"results.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", indent=1)
    return path


def top_of(
    kind: str, spec: dict[str, Any], status: dict[str, Any], table: bytes, summary: dict, top: int
) -> str:
    """The same tables `s1mple optimize` / `s1mple variant-test` print."""
    from s1mple.cli.optimize import variant_table

    if kind == "VariantTest":
        return variant_table(summary)
    import pandas as pd

    from s1mple.meta.aggregation import top_table

    frame = pd.read_parquet(io.BytesIO(table))
    if "rank" in frame.columns:
        frame = frame.sort_values("rank", kind="stable")
    targets = spec.get("optimizationTargets") or {}
    primary = status.get("primaryMetric") or targets.get("primaryMetric") or "sharpe_ratio"
    return top_table(frame, primary, top, list(targets.get("secondaryMetrics") or []))


def run(args: argparse.Namespace) -> int:
    from s1mple.executors.apiserver import ApiError, ApiServer, login
    from s1mple.kube.names import GROUP, VERSION
    from s1mple_engine.store import StoreError

    target = parse_target(args.resource)
    info = login()
    namespace = args.namespace or info.default_namespace or "default"
    if not _NAME.fullmatch(namespace) or "." in namespace:
        raise ConfigError(f"-n {namespace!r}: not a namespace name (lower-case letters, digits and '-')")
    api = ApiServer(login=lambda: info)
    try:
        body = api.get(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{target.plural}/{target.name}")
    except ApiError as exc:
        print(f"s1mple results: {target.kind} {namespace}/{target.name}: {exc}", file=sys.stderr)
        return 2
    spec, status = body.get("spec") or {}, body.get("status") or {}
    locations = status.get("results") or {}
    phase = status.get("phase") or "not started"
    if not locations.get("table") or not locations.get("summary"):
        print(
            f"s1mple results: {target.kind} {namespace}/{target.name} has no results yet "
            f"(phase {phase}, progress {status.get('progress') or '-'})",
            file=sys.stderr,
        )
        return 2
    storage = spec.get("storage") or {}
    endpoint = endpoint_for(storage, args.endpoint)
    out = Path(args.out or Path("results") / namespace / target.name)
    out.mkdir(parents=True, exist_ok=True)
    try:
        creds, source = credentials(api, namespace, storage)
        fetched = {}
        for what in ("table", "summary"):
            store, key = open_location(locations[what], endpoint, creds, storage.get("region"))
            fetched[what] = store.get_bytes(key)
        table_path = write_table(fetched["table"], args.format, out)
        summary = json.loads(fetched["summary"])
        (out / "result.json").write_bytes(fetched["summary"])
        report = fetch_report(locations, endpoint, creds, storage, out) if args.report else None
    except StoreError as exc:
        print(f"s1mple results: storage error: {exc}", file=sys.stderr)
        return 1
    except KeyError as exc:
        print(f"s1mple results: {exc.args[0]} is listed in status but missing in storage", file=sys.stderr)
        return 1
    print(
        f"{target.kind} {namespace}/{target.name}: {phase}, {status.get('progress') or '-'} runs, "
        f"best {status.get('best') or '-'} (generation {status.get('observedGeneration') or '-'})"
    )
    print(top_of(target.kind, spec, status, fetched["table"], summary, args.top))
    print(
        f"\nresults: {table_path} and {out / 'result.json'} (from {endpoint or 'AWS'}, credentials: {source})"
    )
    if args.report:
        if report is None:
            print("report: this resource has no report (status.results.report is empty)")
        else:
            print(f"report: {report}")
            import webbrowser  # not at start-up: every command parses this module

            webbrowser.open(report.resolve().as_uri())
    return 0


def fetch_report(
    locations: dict[str, Any], endpoint: str | None, creds: dict[str, str], storage: dict[str, Any], out: Path
) -> Path | None:
    """The Trade Explorer report (status.results.report) as a local file, or None if the status has none."""
    uri = locations.get("report")
    if not uri:
        return None
    store, key = open_location(uri, endpoint, creds, storage.get("region"))
    path = out / "report.html"
    path.write_bytes(store.get_bytes(key))
    return path

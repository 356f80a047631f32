"""`s1mple operator`: run the s1mple controller (the Kubernetes operator) against the current kubeconfig
(the operator image runs this too)."""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "operator",
        help="run the s1mple controller (the Optimization/VariantTest Kubernetes operator) here",
        description="Reconcile Optimization and VariantTest resources into Indexed Jobs. One replica.",
    )
    p.add_argument(
        "--namespace", "-n", action="append", default=[], help="watch only this namespace (repeatable)"
    )
    p.add_argument(
        "--liveness", metavar="URL", help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz"
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (default: not served)",
    )
    p.add_argument("--metrics-host", default="0.0.0.0", metavar="HOST", help="address for --metrics-port")
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: one JSON object per line, with the resource and step as fields",
    )
    p.add_argument(
        "--allowed-runner-images",
        metavar="PREFIXES",
        help="comma-separated image repositories (repo: its tags and digests; registry/org/: everything "
        "under it) whose pods may receive storage credentials; default: $S1MPLE_ALLOWED_RUNNER_IMAGES, "
        "else the default runner image's repository",
    )
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=run)


def require_crds() -> None:
    """kopf's scanning is off (see handlers.configure), so it would never notice kinds that appear later:
    refuse to start without them, with the fix, rather than run idle."""
    from s1mple.executors.apiserver import ApiError, ApiServer
    from s1mple.kube.names import GROUP, VERSION
    from s1mple.kube.resources import KINDS

    try:
        served = {r["name"] for r in ApiServer().get(f"/apis/{GROUP}/{VERSION}").get("resources", [])}
    except ApiError as exc:
        if exc.status != 404:
            raise
        served = set()
    missing = {info["plural"] for info in KINDS.values()} - served
    if missing:
        raise SystemExit(
            f"s1mple operator: the API server does not serve {GROUP}/{VERSION} {sorted(missing)}: "
            "install the CRDs first (kubectl apply --server-side -f crds/, or the Helm chart), then restart"
        )


def run(args: argparse.Namespace) -> int:
    import kopf

    import s1mple.kube.handlers  # noqa: F401  (registers the handlers)
    from s1mple.kube import monitoring
    from s1mple.kube.credentials import ALLOWED_IMAGES_ENV

    if args.allowed_runner_images is not None:
        os.environ[ALLOWED_IMAGES_ENV] = args.allowed_runner_images

    require_crds()

    log_format = kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=args.verbose, log_format=log_format)
    if args.metrics_port is not None:
        monitoring.serve(args.metrics_port, args.metrics_host)
    kopf.run(
        standalone=True,
        namespaces=args.namespace or (),
        clusterwide=not args.namespace,
        liveness_endpoint=args.liveness,
    )
    return 0

"""`s1mple operator`: run the operator against the current kubeconfig (the operator image runs this too)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "operator",
        help="run the Optimization/VariantTest operator against the current kubeconfig",
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
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import kopf

    import s1mple.kube.handlers  # noqa: F401  (registers the handlers)
    from s1mple.kube import monitoring

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

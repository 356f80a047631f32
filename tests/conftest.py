# Shared pytest setup. The test cluster's fixtures (kube_cluster, kube_namespace,
# kube_api: the project's REST client (s1mple.executors.apiserver), not the kubernetes client;
# s3_client, s3_bucket) and the `cluster` marker: tests/cluster/README.md.
pytest_plugins = ["tests.cluster.fixtures"]

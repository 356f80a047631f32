# The operator tests' cluster fixtures (defined beside the first tests that used them), for every module here.
from tests.operator.test_operator_cluster import crds, operator  # noqa: F401

"""The confused-deputy guard's pure rules (the real-cluster proof is test_faults_cluster.py)."""

import base64

import pytest

from s1mple.kube import credentials
from s1mple_engine.config import ConfigError


def _secret(labels=None, annotations=None, data=None):
    return {"metadata": {"labels": labels or {}, "annotations": annotations or {}}, "data": data or {}}


OPTED_IN = {credentials.OPT_IN_LABEL: "true"}
BOUND = {credentials.ENDPOINT_ANNOTATION: "http://minio.minio:9000/"}
KEYS = {
    "AWS_ACCESS_KEY_ID": base64.b64encode(b"id").decode(),
    "AWS_SECRET_ACCESS_KEY": base64.b64encode(b"secret").decode(),
}


def test_an_opted_in_secret_bound_to_the_endpoint_is_used():
    secret = _secret(OPTED_IN, BOUND, KEYS)
    assert credentials.usable_credentials(secret, "s", "HTTP://minio.minio:9000") == ("id", "secret")


@pytest.mark.parametrize(
    "secret", [None, _secret({}, BOUND, KEYS), _secret({credentials.OPT_IN_LABEL: "yes"})]
)
def test_missing_and_not_opted_in_look_the_same(secret):
    with pytest.raises(credentials.CredentialsNotUsable) as exc:
        credentials.usable_credentials(secret, "s", "http://minio.minio:9000")
    assert str(exc.value).startswith("storage.credentialsSecretRef: Secret 's' is not usable")


@pytest.mark.parametrize(
    "endpoint", [None, "http://127.0.0.1:9000", "https://minio.minio:9000", "http://minio.minio:9000/x"]
)
def test_another_endpoint_is_invalid_and_not_echoed(endpoint):
    with pytest.raises(ConfigError) as exc:
        credentials.usable_credentials(_secret(OPTED_IN, BOUND, KEYS), "s", endpoint)
    assert str(exc.value).startswith("storage.endpoint:") and "minio.minio" not in str(exc.value)


def test_images_match_by_repository_not_by_string_prefix():
    allowed = ("ghcr.io/s1mple/s1mple-runner", "registry.example/team/")
    assert credentials.image_allowed("ghcr.io/s1mple/s1mple-runner:0.2.0", allowed)
    assert credentials.image_allowed("ghcr.io/s1mple/s1mple-runner@sha256:abc", allowed)
    assert credentials.image_allowed("registry.example/team/runner:1", allowed)
    assert not credentials.image_allowed("ghcr.io/s1mple/s1mple-runner-evil:1", allowed)
    assert not credentials.image_allowed("attacker.example/exfil:1", allowed)

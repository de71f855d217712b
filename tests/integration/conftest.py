"""The real S3 API fixtures (moto's server on loopback) for the integration tests: see
tests/helpers/s3_server.py."""

from s3_server import s3_auth_server, s3_server, s3_store  # noqa: F401 - pytest fixtures

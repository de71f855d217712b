"""The pure core of the provider: no Airflow import anywhere below this package.

* :mod:`~airflow_provider_rtcim.core.signing` -- Volcengine HMAC-SHA256 ("V4") request signing.
* :mod:`~airflow_provider_rtcim.core.errors` -- the error type and the retry classification.
* :mod:`~airflow_provider_rtcim.core.ratelimit` -- a thread-safe client-side rate limiter.
* :mod:`~airflow_provider_rtcim.core.pagination` -- cursor pagination with anomaly guards.
* :mod:`~airflow_provider_rtcim.core.client` -- the signed, retried, rate-limited HTTP client.

The Airflow classes (hook, operator, sensor, trigger) are thin layers over these.
"""

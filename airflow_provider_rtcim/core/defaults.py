"""Every default of the provider, in one place (pure: importing this costs nothing).

The HTTP client, the hook, the operators and the sensor all read their defaults from here,
so a default is changed once.
"""

from __future__ import annotations

DEFAULT_CONN_ID = "rtcim_default"
DEFAULT_VERSION = "2020-12-01"
DEFAULT_REGION = "cn-north-1"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_QPS = 95.0
"""5% under the API's 100 QPS: the API counts arrivals in a sliding second, and thread
wake-up jitter bunches requests spaced exactly 1/100 s apart (about 1% drew a 429 at 100)."""
DEFAULT_MAX_RETRIES = 5
DEFAULT_POOL_MAXSIZE = 32
DEFAULT_RETRY_BACKOFF = 0.3
DEFAULT_RETRY_BACKOFF_MAX = 20.0
DEFAULT_RETRY_AFTER_MAX = 120.0
DEFAULT_PAGE_SIZE = 20
DEFAULT_MAX_PAGES = 100_000
DEFAULT_MAX_PAGES_WITHOUT_NEW_ITEMS = 100
"""Pages in a row that bring no new item but still say ``HasMore`` before a listing stops."""
DEFAULT_SERVICE = "rtc"
DEFAULT_USER_ID_TYPE = "int"
DEFAULT_MAX_WORKERS = 16
DEFAULT_MAX_XCOM_ROWS = 10_000
USER_AGENT = "airflow-provider-rtcim"

"""The emulator's runtime options (what :meth:`Emulator.configure` changes), validated in one place.

Usage::

    options = Options(faults=FaultInjector())
    options.configure(latency=0.05, fault_rate=0.2, anomalies={"*": "stuck_cursor"})
    options.anomaly_for(1000001)     # "stuck_cursor"
    options.config                   # a JSON-safe snapshot (the session token only as set/not set)
"""

from __future__ import annotations

import threading
from typing import Any

from airflow_provider_rtcim.emulator.faults import (
    FaultInjector,
    anomaly_keys_for_config,
    normalize_anomalies,
    normalize_fault_kinds,
)
from airflow_provider_rtcim.emulator.utils import UserKey

CONFIG_KEYS = (
    "latency",
    "qps_limit",
    "fault_rate",
    "fault_kinds",
    "fault_seed",
    "max_consecutive_faults",
    "retry_after",
    "anomalies",
    "reorder_data_type0",
    "participants_last_page_has_more",
    "clock_offset",
    "session_token",
    "verify_signatures",
    "verbose",
)
FAULT_OPTIONS = ("fault_rate", "fault_kinds", "fault_seed", "max_consecutive_faults")


class Options:
    """Runtime options; the fault options live on :attr:`faults` (a :class:`FaultInjector`)."""

    def __init__(self, *, faults: FaultInjector, session_token: str | None, verify_signatures: bool) -> None:
        self.faults = faults
        self._lock = threading.Lock()
        self.latency = 0.0
        self.qps_limit: float | None = 100.0
        self.retry_after: float | None = None
        self.anomalies: dict[Any, str] = {}
        self.reorder_data_type0 = False
        self.participants_last_page_has_more = False
        self.clock_offset = 0.0
        self.session_token = session_token
        self.verify_signatures = bool(verify_signatures)
        self.verbose = False

    def anomaly_for(self, key: UserKey) -> str | None:
        """The anomaly for a user (GetUserConversations, ListFriend, GetBlackList) or a
        conversation id (the conversation actions), else ``"*"``'s."""
        anomalies = self.anomalies
        return anomalies.get(key) or anomalies.get("*")

    def configure(self, **options: Any) -> None:
        """Change options; unknown names raise ``ValueError``. A fault option resets the fault history."""
        unknown = sorted(set(options) - set(CONFIG_KEYS))
        if unknown:
            raise ValueError(f"configure: unknown option(s) {unknown}; allowed: {', '.join(CONFIG_KEYS)}")
        faults = self.faults
        with self._lock:
            if "latency" in options:
                latency = float(options["latency"] or 0)
                if latency < 0:
                    raise ValueError("latency must be >= 0 seconds")
                self.latency = latency
            if "qps_limit" in options:
                q = options["qps_limit"]
                if q is not None and float(q) < 0:
                    raise ValueError("qps_limit must be > 0, or None/0 for unlimited")
                self.qps_limit = float(q) if q else None
            if "fault_rate" in options:
                rate = float(options["fault_rate"] or 0)
                if not 0 <= rate <= 1:
                    raise ValueError("fault_rate must be between 0 and 1")
                faults.rate = rate
            if "fault_kinds" in options:
                faults.kinds = normalize_fault_kinds(options["fault_kinds"])
            if "fault_seed" in options:
                faults.seed = int(options["fault_seed"] or 0)
            if "max_consecutive_faults" in options:
                mcf = int(options["max_consecutive_faults"])
                if mcf < 0:
                    raise ValueError("max_consecutive_faults must be >= 0")
                faults.max_consecutive = mcf
            if options.keys() & set(FAULT_OPTIONS):
                faults.reset()
            if "retry_after" in options:
                ra = options["retry_after"]
                self.retry_after = None if ra is None else float(ra)
            if "anomalies" in options:
                self.anomalies = normalize_anomalies(options["anomalies"])
            if "reorder_data_type0" in options:
                self.reorder_data_type0 = bool(options["reorder_data_type0"])
            if "participants_last_page_has_more" in options:
                self.participants_last_page_has_more = bool(options["participants_last_page_has_more"])
            if "clock_offset" in options:
                self.clock_offset = float(options["clock_offset"] or 0)
            if "session_token" in options:
                self.session_token = options["session_token"] or None
            if "verify_signatures" in options:
                self.verify_signatures = bool(options["verify_signatures"])
            if "verbose" in options:
                self.verbose = bool(options["verbose"])

    @property
    def config(self) -> dict[str, Any]:
        """The runtime options (the session token shown only as set/not set)."""
        faults = self.faults
        return {
            "latency": self.latency,
            "qps_limit": self.qps_limit,
            "fault_rate": faults.rate,
            "fault_kinds": list(faults.kinds),
            "fault_seed": faults.seed,
            "max_consecutive_faults": faults.max_consecutive,
            "retry_after": self.retry_after,
            "anomalies": anomaly_keys_for_config(self.anomalies),
            "reorder_data_type0": self.reorder_data_type0,
            "participants_last_page_has_more": self.participants_last_page_has_more,
            "clock_offset": self.clock_offset,
            "session_token_set": self.session_token is not None,
            "verify_signatures": self.verify_signatures,
            "verbose": self.verbose,
        }

"""The routing table on the standalone Worker (issue 18): the acceptance
scenario of tablelib.py through `POST /v1/chat/completions`, the attempts
read from `x-f3dx-trace` and the state from `GET /stats`; and a bad table in
`ROUTER_CONFIG` refused at the first request with the very message the
Python package's `Router(...)` gives, never the key."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from f3dx_router import ConfigError, Router
from mock_provider import MockProviders
from tablelib import MESSAGES, SCENARIOS, SECRET, Reply, Scenario, all_bad_config, config, run
from workerlib import WranglerDev, parse_trace

TOKEN = secrets.token_hex(16)


class WorkerHost:
    def __init__(self, worker: WranglerDev) -> None:
        self.worker = worker

    def call(self, model: str) -> Reply:
        status, headers, reply = self.worker.post_json(
            "/v1/chat/completions", {"model": model, "messages": MESSAGES}, token=TOKEN, timeout=30.0)
        assert SECRET not in json.dumps(reply)
        attempts = [(a["provider"], a["group"], a["outcome"]) for a in parse_trace(headers.get("x-f3dx-trace"))]
        return Reply(status == 200, attempts)

    def stats(self) -> dict[str, Any]:
        status, _, stats = self.worker.get_json("/stats", token=TOKEN)
        assert status == 200
        return dict(stats)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_acceptance_scenario_on_the_worker(scenario: Scenario) -> None:
    with MockProviders({"mocks": scenario.mocks}) as m:
        router_config = json.dumps(config(m, **scenario.extra))
        with WranglerDev({"ROUTER_CONFIG": router_config, "ROUTER_TOKEN": TOKEN}) as worker:
            run(scenario, m, WorkerHost(worker))
            assert SECRET not in worker.output_text()


def test_a_bad_table_is_refused_with_pythons_message() -> None:
    cfg = all_bad_config()
    with pytest.raises(ConfigError) as built:
        Router(cfg["providers"], **{k: v for k, v in cfg.items() if k != "providers"})
    with WranglerDev({"ROUTER_CONFIG": json.dumps(cfg), "ROUTER_TOKEN": TOKEN}) as worker:
        status, _, reply = worker.post_json("/v1/chat/completions", {"model": "gpt-4o", "messages": MESSAGES},
                                            token=TOKEN, timeout=30.0)
        out = worker.output_text()
    assert status == 500
    assert reply["error"]["message"] == f"the worker's config is unusable: ROUTER_CONFIG: {built.value}"
    assert len(str(built.value).splitlines()) == 8
    assert SECRET not in json.dumps(reply) and SECRET not in out

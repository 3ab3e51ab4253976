"""Webhook to ticket on a real self-hosted stack, set up as the README says.

A `prefect server start` on loopback, the work pool, `prefect deploy` of
deployments/prefect.yaml, a process worker, and `s1-autotask receiver`, each its own
process; the Autotask and SentinelOne emulators in this process. Slow (about a
minute), and the only test of the deployment and its trigger as a user runs them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from s1_autotask.emulators.autotask import AutotaskEmulator
from s1_autotask.emulators.autotask import serve_in_thread as serve_autotask
from s1_autotask.emulators.sentinelone import SentinelOneEmulator
from s1_autotask.emulators.sentinelone import serve_in_thread as serve_s1
from tests.conftest import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WEBHOOK_SECRET = "integration-webhook-secret-0123456789"
AT_USER, AT_SECRET, AT_CODE = (
    "api-user@example.com",
    "it-secret-0123456",
    "IT-CODE-0123",
)
S1_TOKEN = "integration-s1-token-0123456789"
MITRE = next(p for p in SAMPLES if "mitre-mitigated" in p.name)
STAR = next(p for p in SAMPLES if "star-custom-rule" in p.name)
NOT_MITIGATED = next(p for p in SAMPLES if "suspicious-not-mitigated" in p.name)
MIMIKATZ_ID = "1113032189486913422"
TICKET_WAIT_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    """The running stack and what a test needs to drive it."""

    api_url: str
    receiver_url: str
    autotask: AutotaskEmulator
    env: dict[str, str]
    logs: Path

    def post(self, body: bytes, **headers: str) -> httpx.Response:
        sent = {"X-Webhook-Secret": WEBHOOK_SECRET, "Content-Type": "application/json"}
        return httpx.post(
            f"{self.receiver_url}/webhooks/sentinelone",
            content=body,
            headers=sent | headers,
            timeout=10,
        )

    def ticket_for(self, threat_id: str) -> dict[str, object]:
        """Wait for the threat's ticket in the Autotask emulator."""
        deadline = time.monotonic() + TICKET_WAIT_SECONDS
        while time.monotonic() < deadline:
            found = [t for t in self.autotask.tickets if t["externalID"] == threat_id]
            if found:
                return found[0]
            time.sleep(0.5)
        pytest.fail(f"no ticket for threat {threat_id}; logs:\n{self.tail_logs()}")

    def tail_logs(self) -> str:
        parts = []
        for log in sorted(self.logs.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-30:]
            parts.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(parts)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own executables and arguments
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _run(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(  # noqa: S603 - our own executables and arguments
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _wait_for(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{what} did not come up within {timeout} s")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            # A process worker can ignore the first SIGTERM while it drains.
            process.kill()
            process.wait(timeout=15)


def _base_env(prefect_home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "S1AT_"))
    }
    env.update(
        {
            "PREFECT_HOME": str(prefect_home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        }
    )
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("prefect-home")
    logs = tmp_path_factory.mktemp("logs")
    api_port, receiver_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}/api"
    env = _base_env(home)
    processes: list[subprocess.Popen[bytes]] = []
    autotask = AutotaskEmulator.from_seed(
        username=AT_USER, secret=AT_SECRET, integration_code=AT_CODE
    )
    with (
        serve_autotask(autotask) as at_server,
        serve_s1(SentinelOneEmulator.from_samples(token=S1_TOKEN)) as s1_server,
    ):
        try:
            prefect = str(BIN / "prefect")
            server_cmd = [prefect, "server", "start", "--host", "127.0.0.1"]
            server_cmd += ["--port", str(api_port)]
            processes.append(_start(server_cmd, env, logs / "server.log"))
            _wait_for(
                lambda: httpx.get(f"{api_url}/health", timeout=2).status_code == 200,
                "prefect server",
                timeout=120,
            )

            env = env | {"PREFECT_API_URL": api_url, "S1AT_PROJECT_DIR": str(ROOT)}
            _run(
                [prefect, "work-pool", "create", "s1-autotask", "--type", "process"],
                env,
            )
            deploy = [prefect, "--no-prompt", "deploy"]
            _run([*deploy, "--prefect-file", "deployments/prefect.yaml", "--all"], env)

            service_env = env | {
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                "S1AT_AUTOTASK__USERNAME": AT_USER,
                "S1AT_AUTOTASK__SECRET": AT_SECRET,
                "S1AT_AUTOTASK__INTEGRATION_CODE": AT_CODE,
                "S1AT_AUTOTASK__ZONE_URL": (
                    f"{at_server.url}/atservicesrest/v1.0/zoneInformation"
                ),
                "S1AT_MAPPING__FALLBACK_COMPANY_ID": "0",
                "S1AT_SENTINELONE__API_URL": s1_server.url,
                "S1AT_SENTINELONE__API_TOKEN": S1_TOKEN,
                "S1AT_RECEIVER__SECRET": WEBHOOK_SECRET,
                "S1AT_RECEIVER__DATA_DIR": str(tmp_path_factory.mktemp("deliveries")),
                "S1AT_RECEIVER__PORT": str(receiver_port),
            }
            worker = [prefect, "worker", "start", "--pool", "s1-autotask"]
            processes.append(_start(worker, service_env, logs / "worker.log"))
            receiver = [str(BIN / "s1-autotask"), "receiver"]
            processes.append(_start(receiver, service_env, logs / "receiver.log"))
            receiver_url = f"http://127.0.0.1:{receiver_port}"
            _wait_for(
                lambda: httpx.get(f"{receiver_url}/healthz").status_code == 200,
                "receiver",
                timeout=60,
            )

            yield Stack(api_url, receiver_url, autotask, service_env, logs)
        finally:
            _stop(processes)


class TestWebhookToTicket:
    def test_a_posted_threat_becomes_its_ticket(self, stack: Stack):
        answer = stack.post(MITRE.read_bytes())

        assert answer.status_code == 202, answer.text
        assert answer.json()["threat_ids"] == ["1373834705420286869"]
        ticket = stack.ticket_for("1373834705420286869")
        assert "OfficeTimeline.exe" in str(ticket["title"])

    def test_a_doorbell_becomes_the_fetched_threats_ticket(self, stack: Stack):
        answer = stack.post(json.dumps({"threatId": MIMIKATZ_ID}).encode())

        assert answer.status_code == 202, answer.text
        assert answer.json()["kind"] == "threat_ids"
        assert "mimikatz.exe" in str(stack.ticket_for(MIMIKATZ_ID)["title"])

    def test_a_wrong_secret_is_refused(self, stack: Stack):
        answer = stack.post(MITRE.read_bytes(), **{"X-Webhook-Secret": "guess"})

        assert answer.status_code == 401
        assert answer.json() == {"error": "Wrong secret in X-Webhook-Secret."}

    def test_the_deployment_trigger_turns_an_event_into_a_ticket(self, stack: Stack):
        body = json.loads(NOT_MITIGATED.read_text(encoding="utf-8"))
        event = {
            "id": str(uuid.uuid4()),
            "occurred": datetime.now(UTC).isoformat(),
            "event": "sentinelone.threat.received",
            "resource": {"prefect.resource.id": f"sentinelone.threat.{body['id']}"},
            "payload": {"body": body},
        }

        answer = httpx.post(f"{stack.api_url}/events", json=[event], timeout=10)

        assert answer.status_code == 204
        assert "nsh29ED.tmp" in str(stack.ticket_for(body["id"])["title"])

    def test_a_delivery_kept_while_prefect_is_down_is_replayed_later(
        self, stack: Stack, tmp_path: Path
    ):
        down = stack.env | {
            "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
            "S1AT_RECEIVER__DATA_DIR": str(tmp_path),
            "S1AT_RECEIVER__PORT": str(free_port()),
        }
        cli = str(BIN / "s1-autotask")
        receiver = _start([cli, "receiver"], down, stack.logs / "down.log")
        try:
            url = f"http://127.0.0.1:{down['S1AT_RECEIVER__PORT']}"
            _wait_for(
                lambda: httpx.get(f"{url}/healthz").status_code == 200, "receiver", 60
            )
            answer = httpx.post(
                f"{url}/webhooks/sentinelone",
                content=STAR.read_bytes(),
                headers={
                    "X-Webhook-Secret": WEBHOOK_SECRET,
                    "Content-Type": "application/json",
                },
            )
            delivery_id = answer.json()["delivery_id"]
            _wait_for(lambda: _attempts(cli, down, delivery_id) >= 1, "a retry", 60)
        finally:
            _stop([receiver])

        kept = _delivery(cli, down, delivery_id)
        assert kept["status"] == "pending"
        assert "ConnectError" in str(kept["last_error"])

        up = down | {"PREFECT_API_URL": stack.api_url}
        _run([cli, "deliveries", "replay", delivery_id], up)

        assert _delivery(cli, up, delivery_id)["status"] == "done"
        assert "cmd.exe" in str(stack.ticket_for("123456")["title"])


def _delivery(cli: str, env: dict[str, str], delivery_id: str) -> dict[str, object]:
    listed = subprocess.run(  # noqa: S603 - our own executable and arguments
        [cli, "deliveries", "list", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found: list[dict[str, object]] = json.loads(listed.stdout)
    return next(d for d in found if d["id"] == delivery_id)


def _attempts(cli: str, env: dict[str, str], delivery_id: str) -> int:
    return int(str(_delivery(cli, env, delivery_id)["attempts"]))

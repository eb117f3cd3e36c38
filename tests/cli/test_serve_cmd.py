"""``userloop serve``: its options reach the service's configuration, and bad ones stop it before it starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from userloop.cli.main import app
from userloop.collect.door import Limits
from userloop.service.runtime import ServiceConfig

runner = CliRunner()


def test_options_configure_the_collector_limits_and_the_nightly_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[Path, ServiceConfig]] = []

    def run(workspace: Path, config: ServiceConfig, **_: Any) -> None:
        started.append((workspace, config))

    monkeypatch.setattr("userloop.api.server.serve", run)
    monkeypatch.setattr("userloop.cli.ports.claim", lambda host, port: None)  # no real port for a fake server
    args = ["serve", "-w", str(tmp_path), "--host", "127.0.0.2", "--port", "8123", "--max-body-mb", "2",
            "--max-decompressed-mb", "8", "--max-records", "500", "--max-record-kb", "64", "--rate", "50",
            "--burst", "70", "--clv-model", "paretonbd", "--horizon-days", "30"]  # fmt: skip
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [(workspace, config)] = started
    assert workspace == tmp_path
    assert (config.host, config.port, config.clv_model, config.horizon_days) == ("127.0.0.2", 8123, "paretonbd", 30)
    assert config.limits == Limits(
        max_body_bytes=2 << 20,
        max_decompressed_bytes=8 << 20,
        max_records=500,
        max_record_bytes=64 << 10,
        rate_per_second=50.0,
        burst=70.0,
    )


def test_defaults_are_the_service_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[ServiceConfig] = []
    monkeypatch.setattr("userloop.api.server.serve", lambda _ws, config, **_: started.append(config))
    monkeypatch.setattr("userloop.cli.ports.claim", lambda host, port: None)  # no real port for a fake server
    result = runner.invoke(app, ["serve", "-w", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert started == [ServiceConfig()]


@pytest.mark.parametrize(
    ("option", "complaint"), [(["--clv-model", "magic"], "unknown clv_model 'magic'"), (["--horizon-days", "0"], "CLV")]
)
def test_bad_model_options_stop_before_the_workspace_is_opened(
    tmp_path: Path, option: list[str], complaint: str
) -> None:
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["serve", "-w", str(ws), *option], catch_exceptions=False)
    assert result.exit_code == 2
    assert complaint in result.output
    assert not ws.exists()


def test_help_names_every_option() -> None:
    result = runner.invoke(app, ["serve", "--help"], catch_exceptions=False, terminal_width=200)
    for option in ("--max-body-mb", "--max-decompressed-mb", "--max-records", "--max-record-kb", "--rate",
                   "--burst", "--clv-model", "--horizon-days"):  # fmt: skip
        assert option in result.output

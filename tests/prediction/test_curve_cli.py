"""`cescale curve` through a local typer app that registers only this command."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from service.cli.curve import register


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps `curve` a named subcommand
        """Nothing."""

    return app


def invoke(app: typer.Typer, *args: str):
    return CliRunner().invoke(app, ["curve", *args])


def test_json_has_the_required_shape(app: typer.Typer) -> None:
    result = invoke(
        app, "--points", "128:1628,1024:386,3008:321", "--predict", "256,512,2048", "--json"
    )
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    predictions = body["predictions"]
    assert list(predictions) == ["256", "512", "2048"]
    assert all(isinstance(value, float) for value in predictions.values())
    assert 1628 > predictions["256"] > predictions["512"] > predictions["2048"] > 0
    assert set(body) <= {"predictions", "model", "pick"}
    assert "form" in body["model"]
    assert body["pick"]["cheapest_mb"] in (256, 512, 2048)


def test_the_pick_and_the_next_size(app: typer.Typer) -> None:
    # CPU-bound below one vCPU, and 2.2x slower than proportional at 128 MB (memory pressure):
    # the fitted form alone would call 128 MB cheapest; read through the points it is not.
    points = "128:22000,512:2500,1769:700"
    result = invoke(app, "--points", points, "--predict", "128,256,512,1024,1769", "--json")
    assert result.exit_code == 0, result.stderr
    pick = json.loads(result.stdout)["pick"]
    assert pick["cheapest_mb"] in (512, 1024, 1769)
    assert pick["measure_next_mb"] in (256, 1024, None)
    text = invoke(app, "--points", points, "--predict", "128,256,512,1024,1769")
    assert f"{pick['cheapest_mb']} MB" in text.stdout.splitlines()[-1]


def test_nothing_to_measure_when_every_size_was_measured(app: typer.Typer) -> None:
    result = invoke(app, "--points", "128:1628,1024:386,3008:321", "--predict", "128,1024,3008")
    assert result.exit_code == 0, result.stderr
    assert "nothing worth measuring" in result.stdout


def test_keys_are_the_sizes_as_given(app: typer.Typer) -> None:
    result = invoke(app, "--points", "512:900", "--predict", " 1024 , 2048.0", "--json")
    assert result.exit_code == 0, result.stderr
    assert list(json.loads(result.stdout)["predictions"]) == ["1024", "2048.0"]


def test_table_without_json(app: typer.Typer) -> None:
    result = invoke(app, "--points", "128:1628,1024:386,3008:321", "--predict", "256")
    assert result.exit_code == 0, result.stderr
    assert "256" in result.stdout and "919" in result.stdout


@pytest.mark.parametrize(
    ("points", "predict"),
    [
        ("128", "256"),
        ("128:abc", "256"),
        ("abc:100", "256"),
        ("128:100,", "256"),
        ("", "256"),
        ("128:0", "256"),
        ("128:-5", "256"),
        ("64:100", "256"),
        ("128:100", "64"),
        ("128:100", "20000"),
        ("128:100", "256,,512"),
        ("128:nan", "256"),
        ("128:100:3", "256"),
    ],
)
def test_malformed_input_exits_2_with_a_message(
    app: typer.Typer, points: str, predict: str
) -> None:
    result = invoke(app, "--points", points, "--predict", predict, "--json")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
    assert result.stdout == ""

"""`cescale deploy` and memory variants on AWS, against moto in server mode with the Lambda
runtime stand-in (`tests/lambda_standin.py`), which runs each version's deployed zip.

Refusals moto cannot produce (AccessDenied, throttling, an update that never settles) use
botocore's Stubber with injected sleeps, so nothing here waits on the clock."""

from __future__ import annotations

import io
import random
import threading
import zipfile
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from service.cli.main import app
from service.platform.aws.clients import AwsClients, make_clients
from service.platform.aws.deploy import Target, deploy, package_zip
from service.platform.aws.lambda_backend import AwsPlatform
from service.platform.aws.retry import Backoff
from service.platform.interface import FunctionSpec, PlatformError, UpdateFailedError
from service.settings import get_settings
from tests.lambda_standin import LambdaStandIn

ECHO = Target("cescale-echo", "echo.handler")


def _zip(version: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo("echo.py", date_time=(1980, 1, 1, 0, 0, 0)),  # same bytes each time
            "def handler(event, context):\n"
            f"    return {{'version': {version}, 'memory': context.memory_limit_in_mb}}\n",
        )
    return buffer.getvalue()


def _alias_memory(lam: Any, name: str) -> dict[str, tuple[int, str]]:
    """alias → (MemorySize, CodeSha256) of the version it points at."""
    out = {}
    for alias in lam.list_aliases(FunctionName=name)["Aliases"]:
        config = lam.get_function_configuration(
            FunctionName=name, Qualifier=alias["FunctionVersion"]
        )
        out[alias["Name"]] = (config["MemorySize"], config["CodeSha256"])
    return out


def test_a_redeploy_moves_every_variant_to_the_new_code_at_its_size(
    standin: LambdaStandIn, platform: AwsPlatform
) -> None:
    role = standin.role()
    lines: list[str] = []
    first = deploy(platform, [ECHO], role_arn=role, zip_bytes=_zip(1), progress=lines.append)
    assert [d.outcome for d in first] == ["created"]
    for size in (256, 1024):
        platform.ensure_variant(ECHO.name, size)
        assert platform.invoke(ECHO.name, {}, memory_mb=size).payload == {
            "version": 1,
            "memory": size,
        }
    again = deploy(platform, [ECHO], role_arn=role, zip_bytes=_zip(1))
    assert [(d.outcome, d.republished) for d in again] == [("unchanged", [])]

    lines.clear()
    second = deploy(platform, [ECHO], role_arn=role, zip_bytes=_zip(2), progress=lines.append)
    assert second[0].outcome == "updated"
    assert sorted(second[0].republished) == ["mem-1024", "mem-256"]
    assert "re-published mem-256, mem-1024 with the new code" in lines[-1]
    lam = standin.client("lambda")
    latest = lam.get_function_configuration(FunctionName=ECHO.name)["CodeSha256"]
    assert _alias_memory(lam, ECHO.name) == {"mem-256": (256, latest), "mem-1024": (1024, latest)}
    for size in (256, 1024):  # the aliases run the new code, at their size
        assert platform.invoke(ECHO.name, {}, memory_mb=size).payload == {
            "version": 2,
            "memory": size,
        }


def test_cescale_deploy_creates_the_builtins_and_runs_them(
    standin: LambdaStandIn, platform: AwsPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CESCALE_BACKEND", "aws")
    monkeypatch.setenv("CESCALE_STORE_URL", "s3://deploy-test/store")
    monkeypatch.setenv("CESCALE_AWS_ENDPOINT_URL", standin.endpoint)
    monkeypatch.setenv("CESCALE_AWS_ROLE_ARN", standin.role())
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["deploy"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "packaged the handlers" in result.output
    assert "deployed 4 functions" in result.output
    lam = standin.client("lambda")
    names = {"cescale-mlp-hpo", "cescale-mlp-training", "cescale-logreg-hpo"}
    for name in names | {"cescale-logreg-training"}:
        config = lam.get_function_configuration(FunctionName=name)
        assert config["Runtime"] == "python3.11"
        assert config["Handler"].startswith("service.workloads.handlers.")
    boto3.client("s3", endpoint_url=standin.endpoint).create_bucket(Bucket="deploy-test")
    platform.ensure_variant("cescale-logreg-hpo", 512)
    event = {
        "contract": "cescale.handler/1",
        "job_id": "deploy-test",
        "task_id": "t1",
        "attempt": 1,
        "kind": "hpo",
        "params": {"lr": 0.1},
        "epoch_from": 0,
        "epoch_to": 1,
        "checkpoint_in": None,
        "checkpoint_out": "s3://deploy-test/store/checkpoints",
        "dataset": "builtin:digits",
        "store": "s3://deploy-test/store",
    }
    result = platform.invoke("cescale-logreg-hpo", event, memory_mb=512)
    assert result.ok, result.error_message
    assert result.report is not None and result.report.memory_mb == 512
    assert result.payload["metrics"]["score"] > 0.5
    assert result.payload["checkpoint"].startswith("s3://deploy-test/store/checkpoints")


def test_deploy_without_a_role_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CESCALE_AWS_ROLE_ARN", raising=False)
    monkeypatch.delenv("CESCALE_BACKEND", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["deploy"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: no execution role: set CESCALE_AWS_ROLE_ARN (or pass --role) to the ARN of "
        "the role the functions run as"
    ]


# -- refusals: Stubber ------------------------------------------------------------------------


def _stubbed(sleeps: list[float]) -> tuple[AwsPlatform, Stubber]:
    def client(service: str) -> Any:
        return boto3.client(
            service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
        )

    clients = AwsClients(client("lambda"), client("lambda"), client("cloudwatch"), client("logs"))
    aws = AwsPlatform(
        clients,
        sleep=sleeps.append,
        rng=random.Random(0),
        backoff=Backoff(base_s=0.1, cap_s=2.0, max_attempts=4),
        update_poll_s=1.0,
        update_timeout_s=5.0,
    )
    stub = Stubber(clients.lambda_control)
    stub.activate()
    return aws, stub


def _run_cli(monkeypatch: pytest.MonkeyPatch, aws: AwsPlatform) -> Any:
    monkeypatch.setattr(AwsPlatform, "from_settings", classmethod(lambda cls, *a, **k: aws))
    monkeypatch.setenv("CESCALE_AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r")
    monkeypatch.delenv("CESCALE_BACKEND", raising=False)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["deploy"])
    finally:
        get_settings.cache_clear()


def test_access_denied_is_one_line_naming_the_permissions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    aws, stub = _stubbed([])
    stub.add_client_error(
        "get_function_configuration",
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/u is not authorized to perform: "
        "lambda:GetFunctionConfiguration",
        403,
    )
    result = _run_cli(monkeypatch, aws)
    assert result.exit_code == 1
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert "could not read cescale-logreg-hpo: AccessDeniedException" in error[0]
    assert "iam:PassRole" in error[0] and "docs/aws.md" in error[0]
    assert "Traceback" not in result.output


def test_throttling_is_retried_with_backoff_then_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeps: list[float] = []
    aws, stub = _stubbed(sleeps)
    stub.add_client_error("get_function_configuration", "ResourceNotFoundException", "no", 404)
    for _ in range(4):
        stub.add_client_error("create_function", "TooManyRequestsException", "Rate exceeded", 429)
    result = _run_cli(monkeypatch, aws)
    assert result.exit_code == 1
    assert len(sleeps) == 3 and all(s > 0 for s in sleeps)  # backoff between the 4 attempts
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "TooManyRequestsException" in error[0]
    assert "kept throttling after retries with backoff" in error[0]


def test_a_throttle_that_passes_deploys(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    aws, stub = _stubbed(sleeps)
    stub.add_client_error("get_function_configuration", "ResourceNotFoundException", "no", 404)
    stub.add_client_error("create_function", "TooManyRequestsException", "Rate exceeded", 429)
    stub.add_response("create_function", {"FunctionName": ECHO.name, "State": "Active"})
    deployed = deploy(aws, [ECHO], role_arn="arn:aws:iam::1:role/r", zip_bytes=_zip(1))
    assert [d.outcome for d in deployed] == ["created"] and len(sleeps) == 1
    stub.assert_no_pending_responses()


def test_an_update_that_never_settles_fails_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeps: list[float] = []
    aws, stub = _stubbed(sleeps)
    stub.add_client_error("get_function_configuration", "ResourceNotFoundException", "no", 404)
    stub.add_response("create_function", {"FunctionName": ECHO.name, "State": "Pending"})
    for _ in range(4):
        stub.add_response(
            "get_function_configuration", {"FunctionName": ECHO.name, "State": "Pending"}
        )
    with pytest.raises(UpdateFailedError, match="did not settle in time"):
        deploy(aws, [ECHO], role_arn="arn:aws:iam::1:role/r", zip_bytes=_zip(1))
    assert sum(sleeps) == pytest.approx(5.0)  # the wait timeout, on the injected clock


def test_the_package_holds_every_builtin_handler() -> None:
    with zipfile.ZipFile(io.BytesIO(package_zip())) as archive:
        names = set(archive.namelist())
    assert {"service/__init__.py", "service/workloads/handlers.py"} <= names


# -- memory variants never disturb others -----------------------------------------------------


def _user_function(standin: LambdaStandIn, name: str, memory_mb: int, version: int) -> None:
    lam = standin.client("lambda")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=standin.role(),
        Handler="echo.handler",
        Code={"ZipFile": _zip(version)},
        MemorySize=memory_mb,
        Timeout=30,
        Environment={"Variables": {"MODE": "user"}},
    )


def test_two_controllers_making_variants_at_once_never_mix_sizes(
    standin: LambdaStandIn,
) -> None:
    """Two replicas (two AwsPlatform instances, two threads each) make variants of different
    sizes of the same bring-your-own function at once. Every alias ends on a version with
    exactly its memory and the current code, and the user's function never changes."""
    _user_function(standin, "user-svm", 1536, 1)
    copy = FunctionSpec("cescale-byo-user-svm", timeout_s=60, copy_of="user-svm")
    sizes = {0: [256, 640, 1024, 2048, 512], 1: [384, 768, 3008, 512, 1280]}
    replicas = [
        AwsPlatform(
            make_clients("us-east-1", standin.endpoint), update_poll_s=0.01, rng=random.Random(i)
        )
        for i in (0, 1)
    ]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(platform: AwsPlatform, mine: list[int]) -> None:
        try:
            start.wait(timeout=30)
            platform.ensure_function(copy)
            for size in mine:
                assert platform.ensure_variant(copy.name, size) == f"mem-{size}"
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=work, args=(replicas[i % 2], sizes[i % 2][j::2]))
        for i, j in ((0, 0), (1, 0), (0, 1), (1, 1))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and not errors, errors

    lam = standin.client("lambda")
    latest = lam.get_function_configuration(FunctionName=copy.name)["CodeSha256"]
    wanted = sorted({*sizes[0], *sizes[1]})
    assert _alias_memory(lam, copy.name) == {f"mem-{m}": (m, latest) for m in wanted}
    user = lam.get_function_configuration(FunctionName="user-svm")
    assert user["MemorySize"] == 1536  # what the user's own callers run never changed
    assert lam.list_aliases(FunctionName="user-svm")["Aliases"] == []
    assert [
        v["Version"] for v in lam.list_versions_by_function(FunctionName="user-svm")["Versions"]
    ] == ["$LATEST"]
    for platform in replicas:
        result = platform.invoke(copy.name, {}, memory_mb=768)
        assert result.payload == {"version": 1, "memory": 768}
        platform.close()


def test_a_publish_that_lost_the_race_is_redone_at_its_own_size(standin: LambdaStandIn) -> None:
    """The interleaving that broke variants, forced: replica B resizes and publishes between
    replica A's resize and A's publish. Moto has no RevisionId on functions, so A's publish
    snapshots B's size: A sees the wrong MemorySize on its version and redoes it."""
    _user_function(standin, "user-race", 1024, 1)
    copy = FunctionSpec("cescale-byo-user-race", timeout_s=60, copy_of="user-race")
    a = AwsPlatform(make_clients("us-east-1", standin.endpoint), update_poll_s=0.01)
    b = AwsPlatform(make_clients("us-east-1", standin.endpoint), update_poll_s=0.01)
    a.ensure_function(copy)
    interleaved: list[str] = []

    def b_goes_first(**_: Any) -> None:
        if not interleaved:
            interleaved.append(b.ensure_variant(copy.name, 2048))

    a.clients.lambda_control.meta.events.register("before-call.lambda.PublishVersion", b_goes_first)
    assert a.ensure_variant(copy.name, 512) == "mem-512"
    assert interleaved == ["mem-2048"]
    lam = standin.client("lambda")
    memory = {alias: size for alias, (size, _) in _alias_memory(lam, copy.name).items()}
    assert memory == {"mem-512": 512, "mem-2048": 2048}
    assert lam.get_function_configuration(FunctionName="user-race")["MemorySize"] == 1024
    a.close()
    b.close()


def test_a_copy_follows_the_users_code_and_moves_its_variants(standin: LambdaStandIn) -> None:
    _user_function(standin, "user-follow", 1024, 1)
    copy = FunctionSpec("cescale-byo-user-follow", timeout_s=45, copy_of="user-follow")
    first = AwsPlatform(make_clients("us-east-1", standin.endpoint), update_poll_s=0.01)
    first.ensure_function(copy)
    first.ensure_variant(copy.name, 512)
    assert first.invoke(copy.name, {}, memory_mb=512).payload == {"version": 1, "memory": 512}
    lam = standin.client("lambda")
    config = lam.get_function_configuration(FunctionName=copy.name)
    assert config["Handler"] == "echo.handler" and config["Timeout"] == 45
    assert config["Environment"]["Variables"] == {"MODE": "user"}
    first.close()

    lam.update_function_code(FunctionName="user-follow", ZipFile=_zip(2))
    second = AwsPlatform(make_clients("us-east-1", standin.endpoint), update_poll_s=0.01)
    second.ensure_function(copy)  # a controller's first use of the function
    assert second.invoke(copy.name, {}, memory_mb=512).payload == {"version": 2, "memory": 512}
    user = lam.get_function_configuration(FunctionName="user-follow")
    assert (
        lam.get_function_configuration(FunctionName=copy.name)["CodeSha256"] == user["CodeSha256"]
    )
    second.close()


def test_a_copy_of_a_function_that_does_not_exist_is_a_clear_error(
    platform: AwsPlatform,
) -> None:
    with pytest.raises(PlatformError, match="'no-such-user-fn' does not exist"):
        platform.ensure_function(
            FunctionSpec("cescale-byo-no-such-user-fn", copy_of="no-such-user-fn")
        )


def test_an_image_deploy_sets_the_command_per_function(
    standin: LambdaStandIn, platform: AwsPlatform
) -> None:
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/cescale-workloads:1"
    targets = [Target("cescale-img-a", "service.workloads.handlers.mlp_trial")]
    deployed = deploy(
        platform, targets, role_arn=standin.role(), architecture="arm64", image_uri=image
    )
    assert [d.outcome for d in deployed] == ["created"]
    lam = standin.client("lambda")
    found = lam.get_function(FunctionName="cescale-img-a")
    assert found["Code"]["ImageUri"] == image
    config = found["Configuration"]
    assert config["PackageType"] == "Image" and config["Architectures"] == ["arm64"]
    assert config["ImageConfigResponse"]["ImageConfig"]["Command"] == [
        "service.workloads.handlers.mlp_trial"
    ]


def test_a_job_on_another_architecture_than_deployed_names_the_fix(
    standin: LambdaStandIn, platform: AwsPlatform
) -> None:
    deploy(platform, [ECHO], role_arn=standin.role(), zip_bytes=_zip(1))
    with pytest.raises(PlatformError, match=r"redeploy it with `cescale deploy --architecture"):
        platform.ensure_function(FunctionSpec(ECHO.name, architecture="arm64"))


def test_a_users_function_runs_as_a_copy_with_a_lambda_name() -> None:
    from service.control.functions import copy_name, function_name, function_spec
    from service.spec import JobSpec

    spec = JobSpec.model_validate(
        {
            "name": "byo",
            "kind": "hpo",
            "workload": {"function": "my-svm", "timeout_s": 120},
            "hpo": {
                "search_space": {"lr": {"uniform": [0.01, 0.1]}},
                "trials": 1,
                "max_epochs": 1,
            },
            "qos": {"deadline_s": 60},
        }
    )
    assert function_name(spec) == "cescale-byo-my-svm"
    made = function_spec(spec, "aws")
    assert (made.name, made.copy_of, made.timeout_s) == ("cescale-byo-my-svm", "my-svm", 120)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:my-svm:prod"
    assert copy_name(arn) == "cescale-byo-my-svm-prod"
    long = "f" * 64
    assert len(copy_name(long)) == 64 and copy_name(long) != copy_name(long[:-1] + "g")

"""`cescale deploy`: create or update the built-in functions on AWS Lambda."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

ACCESS_HINT = (
    " (the caller needs lambda:GetFunctionConfiguration, CreateFunction, UpdateFunctionCode, "
    "UpdateFunctionConfiguration, PublishVersion, ListAliases, UpdateAlias and iam:PassRole on "
    "the role; see docs/aws.md)"
)


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy_command)


def deploy_command(
    role: str | None = typer.Option(
        None, "--role", help="Execution role ARN (default: CESCALE_AWS_ROLE_ARN)."
    ),
    architecture: str | None = typer.Option(
        None, "--architecture", help="x86_64 or arm64 (default: the --spec's, else x86_64)."
    ),
    spec: Path | None = typer.Option(
        None, "--spec", exists=True, dir_okay=False, help="Take the architecture from a job spec."
    ),
    image_uri: str | None = typer.Option(
        None,
        "--image-uri",
        help="Deploy this container image (docker/lambda.Dockerfile) instead of the zip.",
    ),
    layer: list[str] = typer.Option(
        [], "--layer", help="Layer ARN to attach (zip: NumPy and jsonschema); repeatable."
    ),
    wait_timeout_s: float = typer.Option(
        300.0, "--wait-timeout", min=1.0, help="Seconds to wait for each update to settle."
    ),
) -> None:
    """Package the built-in handlers and create or update their functions
    (cescale-<workload>-<kind>); a redeploy re-points every mem-<MB> alias at the new code."""
    from botocore.exceptions import BotoCoreError

    from service.control.functions import builtin_function_name
    from service.platform.aws.deploy import Target, deploy, package_zip
    from service.platform.aws.lambda_backend import AwsPlatform
    from service.platform.interface import PlatformError
    from service.settings import get_settings
    from service.spec import BUILTIN_FUNCTIONS, JobSpec
    from service.workloads import registry

    settings = get_settings()
    role_arn = role or settings.aws_role_arn
    if not role_arn:
        _fail(
            "no execution role: set CESCALE_AWS_ROLE_ARN (or pass --role) to the ARN of the "
            "role the functions run as"
        )
    if spec is not None:
        try:
            # "auto" deploys on x86_64: the service publishes arm64 variants itself
            from_spec = JobSpec.model_validate_json(spec.read_text()).workload.base_architecture
        except ValueError as error:
            _fail(f"{spec}: not a valid job spec: {str(error).splitlines()[0]}")
        if architecture is not None and architecture != from_spec:
            _fail(f"--architecture {architecture} contradicts the spec's {from_spec}")
        architecture = from_spec
    architecture = architecture or "x86_64"
    if architecture not in ("x86_64", "arm64"):
        _fail(f"--architecture must be x86_64 or arm64, not {architecture!r}")

    targets = [
        Target(
            builtin_function_name(workload, kind),
            registry.lambda_handler_setting(registry.resolve(workload, kind)),
        )
        for workload in BUILTIN_FUNCTIONS
        for kind in ("hpo", "training")
    ]
    zip_bytes = None
    if image_uri is None:
        zip_bytes = package_zip()
        typer.echo(f"packaged the handlers: {len(zip_bytes) / 1024:.0f} kB zip")
    platform = AwsPlatform.from_settings(settings, update_timeout_s=wait_timeout_s)
    try:
        deployed = deploy(
            platform,
            targets,
            role_arn=role_arn,
            architecture=architecture,
            zip_bytes=zip_bytes,
            image_uri=image_uri,
            layers=layer,
            progress=typer.echo,
        )
    except PlatformError as error:
        message = str(error).splitlines()[0]
        if "AccessDenied" in message:
            message += ACCESS_HINT
        elif "TooManyRequests" in message or "Throttl" in message:
            message += " (Lambda kept throttling after retries with backoff; try again later)"
        _fail(message)
    except BotoCoreError as error:  # no credentials, endpoint unreachable, ...
        _fail(f"cannot reach AWS: {error}")
    finally:
        platform.close()
    typer.echo(f"deployed {len(deployed)} functions in {settings.aws_region}")


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(1)

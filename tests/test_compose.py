"""docker-compose.yml and the Dockerfile agree with the code they run.

No Docker here: the compose file is parsed and checked against the CLI's commands, the
settings' variable names and the search attributes of kruxt.models, so renaming any of those
without updating the production stack fails this test.
"""

from __future__ import annotations

import argparse
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.api.enums.v1 import IndexedValueType

from kruxt.adapters.settings import PROJECT_ROOT, Settings
from kruxt.models import search_attributes
from kruxt.starter.cli import build_parser

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"

REQUIRED_SERVICES = {"postgres", "temporal", "temporal-ui", "migrate", "worker", "api"}
# Jobs that run once and exit: no healthcheck, never restarted.
ONE_SHOT = {"migrate", "temporal-setup"}
# A web UI with nothing depending on it.
NO_HEALTHCHECK_NEEDED = {"temporal-ui"}
# The services built from our Dockerfile, and the `kruxt` subcommand each runs.
KRUXT_SERVICES = {"migrate": "migrate", "worker": "worker", "api": "api"}
REQUIRED_ENV = {"DATABASE_URL", "TEMPORAL_ADDRESS", "KRUXT_INTAKE_TOKEN"}
# Variables the compose file may set although kruxt.adapters.settings.Settings does not read
# them: each is read by a library or by a feature of DESIGN.md that reads it directly.
ENV_ALLOWLIST = {
    "OPENAI_API_KEY",  # the openai client (LLM triage)
    "OPENAI_BASE_URL",  # the openai client: any OpenAI-compatible server
    "KRUXT_TRIAGE_MODEL",  # the LLM triager's model name
    "SLACK_BOT_TOKEN",  # Slack approvals: posting messages
    "SLACK_SIGNING_SECRET",  # Slack approvals: verifying interaction callbacks
    "SLACK_APPROVAL_CHANNEL",  # Slack approvals: where requests go
    "SENDGRID_API_KEY",  # email approvals and customer replies via SendGrid
    "KRUXT_EMAIL_FROM",  # the sender of those emails
    "GITHUB_TOKEN",  # post-resolution GitHub issues
    "GITHUB_REPOSITORY",  # the repository those issues go to
}
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SEARCH_ATTRIBUTE_CREATE = re.compile(r"--name\s+([A-Za-z0-9_]+)\s+--type\s+([A-Za-z]+)")


@cache
def compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    doc = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), "docker-compose.yml is not a YAML mapping"
    assert isinstance(doc.get("services"), dict), "docker-compose.yml has no `services:` mapping"
    return doc


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """The service's dependencies and their conditions (short syntax: service_started)."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def environment(service: dict[str, Any]) -> dict[str, Any]:
    """The service's environment as a mapping, whichever of the two syntaxes it uses."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return {k: v for k, _, v in (item.partition("=") for item in raw)}
    return dict(raw)


def command_text(service: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts.extend(str(v) for v in value)
    return "\n".join(parts)


def cli_subcommands() -> set[str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("kruxt.starter.cli.build_parser() has no subcommands")


def settings_env_names() -> set[str]:
    names = {field.alias for field in Settings.model_fields.values() if field.alias}
    assert names, "Settings declares no env aliases"
    return names


def cli_type_name(value_type: int) -> str:
    """IndexedValueType -> the name `temporal operator search-attribute create --type` takes."""
    name = IndexedValueType.Name(value_type).removeprefix("INDEXED_VALUE_TYPE_")  # type: ignore[arg-type]
    return "".join(part.capitalize() for part in name.split("_"))


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "the Dockerfile has no FROM"
    return instructions[starts[-1] :]


# ---- compose: services and their wiring --------------------------------------------------


def test_required_services_exist() -> None:
    missing = REQUIRED_SERVICES - services().keys()
    assert not missing, f"docker-compose.yml lacks the services {sorted(missing)}"


def test_every_dependency_is_a_defined_service() -> None:
    problems = [
        f"{name} depends on {dep!r}, which is not a service"
        for name, service in services().items()
        for dep in depends_on(service)
        if dep not in services()
    ]
    assert not problems, "; ".join(problems)


def test_dependency_conditions_are_valid_and_can_be_met() -> None:
    problems: list[str] = []
    for name, service in services().items():
        for dep, condition in depends_on(service).items():
            target = services().get(dep, {})
            if condition not in DEPENDS_ON_CONDITIONS:
                problems.append(f"{name} -> {dep}: unknown condition {condition!r}")
            elif condition == "service_healthy" and "healthcheck" not in target:
                problems.append(f"{name} waits for {dep} to be healthy, but it has no healthcheck")
            elif condition == "service_completed_successfully" and dep not in ONE_SHOT:
                problems.append(f"{name} waits for {dep} to complete, but it is not a one-shot job")
            elif dep in ONE_SHOT and condition != "service_completed_successfully":
                problems.append(
                    f"{name} -> {dep}: a one-shot job must be waited for with "
                    f"service_completed_successfully, not {condition}"
                )
    assert not problems, "; ".join(problems)


def test_long_running_services_have_healthchecks() -> None:
    problems: list[str] = []
    for name, service in services().items():
        if name in ONE_SHOT or name in NO_HEALTHCHECK_NEEDED:
            continue
        check = service.get("healthcheck")
        if not isinstance(check, dict) or check.get("disable") or not check.get("test"):
            problems.append(name)
            continue
        test = check["test"]
        if isinstance(test, list) and test[0] not in ("CMD", "CMD-SHELL"):
            problems.append(f"{name} (healthcheck test must start with CMD or CMD-SHELL)")
    assert not problems, f"services without a working healthcheck: {problems}"


def test_one_shot_jobs_are_not_restarted() -> None:
    for name in ONE_SHOT & services().keys():
        restart = services()[name].get("restart")
        assert restart == "no", (
            f'{name} is a one-shot job: it needs restart: "no" (quoted), got {restart!r}'
        )


def test_compose_value_types() -> None:
    """The shapes `docker compose config` rejects: env values, restart, replicas."""
    problems: list[str] = []
    for name, service in services().items():
        for key, value in environment(service).items():
            if value is not None and not isinstance(value, str | int | float | bool):
                problems.append(f"{name}: environment {key} is a {type(value).__name__}")
        if "restart" in service and not isinstance(service["restart"], str):
            problems.append(f"{name}: restart must be a string (quote 'no')")
        replicas = (service.get("deploy") or {}).get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 1):
            problems.append(f"{name}: deploy.replicas must be a positive integer")
    assert not problems, "; ".join(problems)


def test_workers_scale_horizontally() -> None:
    replicas = (services()["worker"].get("deploy") or {}).get("replicas", 1)
    assert replicas >= 2, f"worker runs {replicas} replica(s); the stack should show 2 or more"
    assert "container_name" not in services()["worker"], (
        "worker sets container_name, which prevents more than one replica"
    )


# ---- compose: our image ---------------------------------------------------------------------


def test_kruxt_services_share_one_image() -> None:
    images = {name: services()[name].get("image") for name in KRUXT_SERVICES}
    builds = {name: services()[name].get("build") for name in KRUXT_SERVICES}
    assert len(set(images.values())) == 1 and None not in images.values(), (
        f"migrate, worker and api must use the same image: {images}"
    )
    assert len({json.dumps(b, sort_keys=True) for b in builds.values()}) == 1, (
        f"migrate, worker and api must be built the same way: {builds}"
    )


@pytest.mark.parametrize(("service", "subcommand"), sorted(KRUXT_SERVICES.items()))
def test_kruxt_services_run_real_subcommands(service: str, subcommand: str) -> None:
    command = services()[service].get("command")
    assert isinstance(command, list) and command, (
        f"{service}: command must be a non-empty list, like [{subcommand!r}], got {command!r}"
    )
    known = cli_subcommands()
    assert command[0] in known, (
        f"{service} runs `kruxt {command[0]}`, which is not a kruxt subcommand {sorted(known)}"
    )
    assert command[0] == subcommand, f"{service} should run `kruxt {subcommand}`, not {command!r}"


@pytest.mark.parametrize("service", sorted(KRUXT_SERVICES))
def test_kruxt_env_names_are_read_by_the_code(service: str) -> None:
    allowed = settings_env_names() | ENV_ALLOWLIST
    unknown = set(environment(services()[service])) - allowed
    assert not unknown, (
        f"{service} sets {sorted(unknown)}, which no code reads: a typo, or a setting that "
        "was renamed? Add it to Settings, or to ENV_ALLOWLIST with the reason"
    )


@pytest.mark.parametrize("service", ["worker", "api"])
def test_customer_channel_settings_pass_through_from_the_host(service: str) -> None:
    # Zendesk and Intercom are configured by the operator's environment: every variable the
    # settings read for them reaches the api (webhooks) and the worker (deliveries), unset
    # meaning off, never a value written in the file.
    env = environment(services()[service])
    names = {n for n in settings_env_names() if n.startswith(("ZENDESK_", "INTERCOM_"))}
    assert len(names) == 9, sorted(names)
    wrong = {n: env.get(n) for n in names if env.get(n) != f"${{{n}:-}}"}
    assert not wrong, f"{service}: pass these through as ${{NAME:-}}: {wrong}"


@pytest.mark.parametrize("service", ["worker", "api"])
def test_kruxt_required_env_is_set(service: str) -> None:
    env = environment(services()[service])
    missing = REQUIRED_ENV - env.keys()
    assert not missing, f"{service} does not set {sorted(missing)}"
    token = str(env["KRUXT_INTAKE_TOKEN"])
    assert token.startswith("${KRUXT_INTAKE_TOKEN"), (
        f"{service}: KRUXT_INTAKE_TOKEN must come from the environment "
        f"(${{KRUXT_INTAKE_TOKEN:?...}}), not a literal in the file"
    )


def test_api_listens_on_all_interfaces() -> None:
    env = environment(services()["api"])
    all_interfaces = "0.0.0.0"  # noqa: S104 - inside a container, loopback is unreachable
    assert env.get("KRUXT_API_HOST") == all_interfaces, (
        "api must set KRUXT_API_HOST=0.0.0.0, or it is unreachable outside its container"
    )


# ---- compose: Temporal search attributes ------------------------------------------------


def test_search_attributes_registered_match_the_code() -> None:
    registered: dict[str, str] = {}
    registering: list[str] = []
    for name, service in services().items():
        found = SEARCH_ATTRIBUTE_CREATE.findall(command_text(service))
        if "search-attribute create" in command_text(service) and found:
            registering.append(name)
            registered.update(found)
    assert registering, "no service registers the custom search attributes"
    expected = {key.name: cli_type_name(key.indexed_value_type) for key in search_attributes.ALL}
    missing = expected.keys() - registered.keys()
    extra = registered.keys() - expected.keys()
    wrong = {k: (registered[k], v) for k, v in expected.items() if k in registered}
    wrong = {k: pair for k, pair in wrong.items() if pair[0] != pair[1]}
    assert not missing, f"search attributes not registered by {registering}: {sorted(missing)}"
    assert not extra, f"{registering} registers attributes the code does not use: {sorted(extra)}"
    assert not wrong, f"search attribute types differ (compose, code): {wrong}"
    for job in registering:
        for dependent in ("worker", "api"):
            assert depends_on(services()[dependent]).get(job) == "service_completed_successfully", (
                f"{dependent} must wait for {job} (service_completed_successfully): workflows "
                "fail to upsert search attributes that are not registered yet"
            )


# ---- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_entrypoint_is_kruxt() -> None:
    stage = final_stage(dockerfile_instructions())
    entrypoints = [args for keyword, args in stage if keyword == "ENTRYPOINT"]
    assert entrypoints, "the Dockerfile's final stage has no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["kruxt"], (
        f'ENTRYPOINT must be ["kruxt"], got {entrypoints[-1]}'
    )
    cmds = [args for keyword, args in stage if keyword == "CMD"]
    assert cmds, "the Dockerfile has no default CMD"
    default = json.loads(cmds[-1])
    assert default and default[0] in cli_subcommands(), (
        f"the default CMD {default} is not a kruxt subcommand {sorted(cli_subcommands())}"
    )


def test_dockerfile_runs_as_non_root_and_sets_known_settings() -> None:
    stage = final_stage(dockerfile_instructions())
    users = [args for keyword, args in stage if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), (
        f"the image must run as a non-root USER, got {users or 'none'}"
    )
    env_names = {
        assignment.partition("=")[0]
        for keyword, args in stage
        if keyword == "ENV"
        for assignment in args.split()
        if "=" in assignment
    }
    unknown = {n for n in env_names if n.startswith("KRUXT_")} - settings_env_names()
    assert not unknown, f"the Dockerfile sets {sorted(unknown)}, which Settings does not read"
    for needed in ("KRUXT_MIGRATIONS_DIR", "KRUXT_KNOWLEDGE_DIR"):
        assert needed in env_names, (
            f"the Dockerfile must set {needed}: a non-editable install cannot find "
            "sql/ and knowledge/ next to the package"
        )


def test_compose_and_dockerfile_paths_exist() -> None:
    """Everything the stack mounts or builds from is in the repository."""
    for name, service in services().items():
        build = service.get("build")
        context = build if isinstance(build, str) else (build or {}).get("context")
        if context:
            assert (PROJECT_ROOT / context / "Dockerfile").is_file(), (
                f"{name} builds from {context}, which has no Dockerfile"
            )
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if isinstance(source, str) and source.startswith("."):
                assert (PROJECT_ROOT / Path(source)).exists(), f"{name} mounts missing {source}"


def test_only_migrate_connects_as_the_owner() -> None:
    """The worker and the api use the runtime role (sql/010); the owner's login is migrate's."""
    owner = services()["postgres"]["environment"]["POSTGRES_USER"]

    def user_of(url: str) -> str:
        return url.split("://", 1)[1].split(":", 1)[0]

    migrate = environment(services()["migrate"])
    assert user_of(migrate["KRUXT_MIGRATE_DATABASE_URL"]) == owner
    for name in ("migrate", "worker", "api"):
        env = environment(services()[name])
        assert user_of(env["DATABASE_URL"]) == "kruxt_runtime", name
        if name != "migrate":
            assert "KRUXT_MIGRATE_DATABASE_URL" not in env, name
        assert str(env["KRUXT_AUDIT_KEY"]).startswith("${KRUXT_AUDIT_KEY:?"), name


def test_payloads_are_encrypted_and_the_ui_decrypts_through_the_api() -> None:
    """Workers and the api share one required payload key; the UI calls the api's /codec."""
    for name in ("worker", "api"):
        key = str(environment(services()[name]).get("KRUXT_PAYLOAD_KEY", ""))
        assert key.startswith("${KRUXT_PAYLOAD_KEY:?"), (
            f"{name}: KRUXT_PAYLOAD_KEY must be required from the environment, got {key!r}"
        )
    endpoint = str(environment(services()["temporal-ui"]).get("TEMPORAL_CODEC_ENDPOINT", ""))
    assert endpoint.rstrip("}").endswith(":8000/codec"), (
        f"temporal-ui must decrypt through the api's /codec, got {endpoint!r}"
    )
    origins = str(environment(services()["api"]).get("KRUXT_CODEC_CORS_ORIGINS", ""))
    assert "http://localhost:8233" in origins, "the api must allow the UI's origin (CORS)"

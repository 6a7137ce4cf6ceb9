"""Valid specs: what a minimal spec means (the defaults), what written values become, and that
the shipped template and example validate."""

from __future__ import annotations

import hashlib
from pathlib import Path
from textwrap import dedent

import pytest
from pydantic import ValidationError

from zerodown.core.errors import InputError
from zerodown.core.types import Address
from zerodown.spec import (
    AnalysisStep,
    HttpProbe,
    LoadedSpec,
    PauseStep,
    RunSpec,
    ServiceSpec,
    SetWeightStep,
    load_spec,
    parse_spec,
    template_text,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MINIMAL = "service: web\nrun:\n  command: python app.py\n"


def spec_of(text: str) -> ServiceSpec:
    return parse_spec(dedent(text)).spec


def weights_and_kinds(spec: ServiceSpec) -> list[int | str]:
    return [
        step.set_weight if isinstance(step, SetWeightStep) else type(step).__name__
        for step in spec.canary_steps
    ]


def test_minimal_spec_gets_the_defaults() -> None:
    """Rolling, one local replica, HTTP GET /healthz, and the seed's four rollback rules."""
    spec = spec_of(MINIMAL)
    assert spec.service == "web"
    assert spec.platform == "local"
    assert spec.version is None
    assert spec.replicas == 1
    assert spec.strategy_name == "rolling"
    assert spec.strategy.rolling is not None
    assert (spec.strategy.rolling.max_surge, spec.strategy.rolling.max_unavailable) == (1, 0)
    assert spec.health_check.probe_kind == "http"
    assert spec.health_check.http == HttpProbe(path="/healthz", expect_status=200)
    assert (spec.health_check.interval, spec.health_check.timeout) == (2.0, 1.0)
    assert spec.traffic.listen == "127.0.0.1:8080"
    assert spec.traffic.address == Address("127.0.0.1", 8080)
    analysis = spec.analysis
    assert analysis.max_error_rate == 0.05
    assert analysis.max_latency_ratio == 2.0
    assert analysis.min_availability == 0.99
    assert analysis.rollback_on_health_check_failure is True
    assert spec.run.restart == "always"
    assert spec.run.restart_window == 300.0
    assert spec.env == {}
    assert spec.canary_steps == ()


@pytest.mark.parametrize("canary", ["{}", "", "{steps: null}"])
def test_canary_without_steps_uses_the_seed_stages(canary: str) -> None:
    """5 -> 25 -> 50 -> 100 with an analysis between each two stages."""
    spec = spec_of(MINIMAL + f"strategy:\n  canary: {canary}\n")
    assert spec.strategy_name == "canary"
    assert spec.strategy.canary is not None and spec.strategy.canary.steps is None
    assert weights_and_kinds(spec) == [
        5,
        "AnalysisStep",
        25,
        "AnalysisStep",
        50,
        "AnalysisStep",
        100,
    ]


def test_written_canary_steps_are_kept_in_order() -> None:
    spec = spec_of(
        MINIMAL
        + dedent(
            """\
            strategy:
              canary:
                steps:
                  - setWeight: 10
                  - pause: {duration: 30s}
                  - analysis: {minRequests: 200, duration: 1m, judge: sequential}
                  - setWeight: 10
                  - pause: {}
                  - setWeight: 100
                  - analysis:
            """
        )
    )
    steps = spec.canary_steps
    assert weights_and_kinds(spec) == [
        10,
        "PauseStep",
        "AnalysisStep",
        10,
        "PauseStep",
        100,
        "AnalysisStep",
    ]
    timed, manual = steps[1], steps[4]
    assert isinstance(timed, PauseStep) and timed.pause.duration == 30.0 and not timed.indefinite
    assert isinstance(manual, PauseStep) and manual.indefinite


def test_analysis_step_overrides_only_what_it_writes() -> None:
    spec = spec_of(
        MINIMAL
        + "analysis: {minRequests: 50, maxErrorRate: 2%}\n"
        + "strategy:\n  canary:\n    steps:\n"
        + "      - setWeight: 50\n      - analysis: {minRequests: 200, duration: 1m}\n"
        + "      - setWeight: 100\n"
    )
    step = spec.canary_steps[1]
    assert isinstance(step, AnalysisStep)
    merged = spec.analysis_for(step)
    assert merged.min_requests == 200
    assert merged.duration == 60.0
    assert merged.max_error_rate == 0.02  # from the top level
    assert merged.max_latency_ratio == 2.0  # the default
    assert spec.analysis_for() is spec.analysis


def test_yaml_keys_are_camel_case_and_values_are_converted() -> None:
    """Durations become seconds, percentages fractions, env values text."""
    spec = spec_of(
        """\
        service: shop-api
        version: "1.10"
        platform: docker
        run:
          image: shop:1.10
          stopGraceSeconds: 1m30s
          restart: on-failure
          maxRestarts: 0
          restartWindow: 1h
        replicas: 6
        env: {DEBUG: true, WORKERS: 4, RATIO: 0.5, NAME: shop}
        healthCheck:
          command: curl -fs localhost:$PORT/ready
          interval: 500ms
          timeout: 0.25
          successThreshold: 2
          startupGrace: 2m
        traffic: {listen: "0.0.0.0:80", stickySessions: true}
        strategy:
          rolling: {maxSurge: 25%, maxUnavailable: "50%", minReadySeconds: 0}
        analysis:
          maxErrorRate: 1.5%
          minAvailability: 0.995
          latencyQuantile: p99
          judge: mann-whitney
        hooks:
          preDeploy: [make migrate]
        checks:
          pre: {dependencies: [{name: ready, url: "http://127.0.0.1:9000/ready"}]}
        """
    )
    assert spec.version == "1.10"
    assert spec.run.stop_grace_seconds == 90.0
    assert spec.run.restart_window == 3600.0
    assert spec.run.max_restarts == 0
    assert spec.env == {"DEBUG": "true", "WORKERS": "4", "RATIO": "0.5", "NAME": "shop"}
    assert spec.health_check.probe_kind == "command"
    assert (spec.health_check.interval, spec.health_check.timeout) == (0.5, 0.25)
    assert spec.health_check.startup_grace == 120.0
    assert spec.traffic.sticky_sessions is True
    rolling = spec.strategy.rolling
    assert rolling is not None
    assert (rolling.max_surge, rolling.max_unavailable) == ("25%", "50%")
    assert (rolling.surge_count(6), rolling.unavailable_count(6)) == (2, 3)
    assert spec.analysis.max_error_rate == pytest.approx(0.015)
    assert spec.analysis.min_availability == 0.995
    assert spec.hooks.pre_deploy == ("make migrate",)
    (ready,) = spec.checks.pre.dependencies
    assert (ready.name, ready.kind, ready.timeout) == ("ready", "http", 2.0)


def test_blue_green_spec() -> None:
    spec = spec_of(MINIMAL + "strategy:\n  blueGreen: {autoPromote: false, previewPort: 8081}\n")
    assert spec.strategy_name == "blue-green"
    assert spec.strategy.blue_green is not None
    assert spec.strategy.blue_green.auto_promote is False
    assert spec.strategy.blue_green.preview_port == 8081
    assert spec.strategy.blue_green.scale_down_delay_seconds == 30.0


def test_sections_left_empty_mean_their_defaults() -> None:
    """``hooks:`` with everything below commented out is YAML null, read as the defaults."""
    spec = spec_of(MINIMAL + "hooks:\n#  preDeploy: []\nhealthCheck:\nstrategy:\n  rolling:\n")
    assert spec.hooks.pre_deploy == ()
    assert spec.health_check.probe_kind == "http"
    assert spec.strategy.rolling is not None


def test_tcp_probe_written_empty() -> None:
    spec = spec_of(MINIMAL + "healthCheck:\n  tcp:\n")
    assert spec.health_check.probe_kind == "tcp"


def test_loaded_spec_keeps_the_text_and_its_sha256() -> None:
    loaded = parse_spec(MINIMAL)
    assert isinstance(loaded, LoadedSpec)
    assert loaded.text == MINIMAL
    assert loaded.spec_hash == hashlib.sha256(MINIMAL.encode()).hexdigest()
    assert loaded.path is None


def test_models_are_frozen() -> None:
    spec = spec_of(MINIMAL)
    with pytest.raises(ValidationError):
        spec.replicas = 3  # type: ignore[misc]


def test_models_can_be_built_in_python_by_attribute_name() -> None:
    spec = ServiceSpec(service="web", run=RunSpec(command="x", stop_grace_seconds="2s"))
    assert spec.run.stop_grace_seconds == 2.0
    assert spec.strategy_name == "rolling"


def test_yaml_must_use_camel_case_even_though_python_may_use_names() -> None:
    """A snake_case key in a file is an unknown key, not a second spelling."""
    from zerodown.core.errors import SpecError

    with pytest.raises(SpecError):
        parse_spec(MINIMAL + "health_check: {tcp: {}}\n")


def test_template_validates() -> None:
    loaded = parse_spec(template_text(), filename="template.yaml")
    assert loaded.spec.service == "web"
    assert loaded.spec.strategy_name == "rolling"


def test_template_fills_in_the_service_name() -> None:
    text = template_text("billing-api")
    assert parse_spec(text).spec.service == "billing-api"
    assert "# zerodown.yaml" in text  # the comments stay


def test_template_refuses_an_invalid_service_name() -> None:
    with pytest.raises(InputError, match="invalid service name"):
        template_text("Billing API")


def test_example_spec_validates_with_the_demo_settings() -> None:
    loaded = load_spec(EXAMPLES / "zerodown.yaml")
    spec = loaded.spec
    assert spec.service == "demo"
    assert spec.platform == "local"
    assert spec.run.command == "python3 app.py"
    assert spec.replicas == 3
    assert spec.health_check.http is not None and spec.health_check.http.path == "/healthz"
    assert (spec.health_check.interval, spec.health_check.timeout) == (0.5, 0.4)
    assert spec.health_check.startup_grace == 20.0
    assert spec.traffic.listen == "127.0.0.1:8080"
    rolling = spec.strategy.rolling
    assert rolling is not None
    assert (rolling.max_surge, rolling.max_unavailable, rolling.min_ready_seconds) == (1, 0, 1.0)
    assert loaded.workdir == EXAMPLES
    assert (loaded.workdir / "app.py").is_file()


@pytest.mark.parametrize(
    "text",
    [
        MINIMAL,
        (EXAMPLES / "zerodown.yaml").read_text(),
        template_text(),
        MINIMAL + "healthCheck:\n  tcp:\nstrategy:\n  canary:\n    steps:\n"
        "      - setWeight: 5\n      - pause: {}\n      - analysis: {maxErrorRate: 1%}\n"
        "      - setWeight: 100\n",
        MINIMAL + "strategy:\n  blueGreen:\n",
    ],
)
def test_a_dumped_spec_validates_back_to_itself(text: str) -> None:
    """JSON dumps (by alias) of a spec are specs: None fields stay 'not chosen'."""
    spec = spec_of(text)
    dumped = spec.model_dump(by_alias=True, mode="json")
    assert ServiceSpec.model_validate(dumped, by_alias=True, by_name=False) == spec

from mlpipeline.core.gate import (
    Check,
    champion_check,
    contract_check,
    decide,
    evaluated_check,
    lone_feature_check,
    schema_check,
    threshold_checks,
)


def passing() -> list[Check]:
    return [contract_check(True, "ok"), *threshold_checks({"accuracy": 0.95}, {"accuracy": 0.9})]


def test_first_model_with_good_metrics_is_promoted() -> None:
    checks = [*passing(), champion_check("f1_macro", 0.9, None, 0.0)]
    verdict = decide("m", "1", None, checks)
    assert verdict.decision == "promoted"
    assert verdict.champion_after == "1"
    assert verdict.reason == ""


def test_threshold_failure_rejects_with_reason() -> None:
    checks = [
        contract_check(True, "ok"),
        *threshold_checks({"accuracy": 0.6, "f1_macro": 0.95}, {"accuracy": 0.9, "f1_macro": 0.5}),
    ]
    verdict = decide("m", "2", "1", checks)
    assert verdict.decision == "rejected"
    assert verdict.champion_after == "1"
    assert verdict.reason == "min_accuracy: accuracy 0.6000 < 0.9000"


def test_contract_failure_rejects() -> None:
    assert decide("m", "2", "1", [contract_check(False, "bad data"), *passing()[1:]]).decision == "rejected"


def test_candidate_must_beat_the_champion_by_more_than_min_improvement() -> None:
    assert champion_check("f1_macro", 0.90, 0.92, 0.0).status == "fail"
    assert champion_check("f1_macro", 0.93, 0.92, 0.0).status == "pass"
    assert champion_check("f1_macro", 0.93, 0.92, 0.02).status == "fail"
    assert champion_check("f1_macro", 0.95, 0.92, 0.02).status == "pass"


def test_a_tie_never_promotes() -> None:
    tie = champion_check("f1_macro", 0.92, 0.92, 0.0)
    assert tie.status == "fail"
    assert "a tie does not promote" in tie.detail
    # float noise from re-scoring on the same data is a tie too
    assert champion_check("f1_macro", 0.92 + 1e-12, 0.92, 0.0).status == "fail"
    assert decide("m", "2", "1", [*passing(), tie]).decision == "rejected"


def test_an_experiment_candidate_becomes_challenger_never_champion() -> None:
    checks = [*passing(), champion_check("f1_macro", 0.99, 0.9, 0.0)]
    verdict = decide("m", "5", "1", checks, experiment="exp-a", mode="experiment")
    assert verdict.decision == "challenger"
    assert verdict.champion_after == "1"
    assert decide("m", "5", "1", checks, mode="explicit").decision == "promoted"


def test_an_unevaluated_version_is_never_promoted() -> None:
    checks = [evaluated_check(False), *passing(), champion_check("f1_macro", 0.99, None, 0.0)]
    assert decide("m", "6", None, checks).decision == "rejected"
    assert decide("m", "6", None, [evaluated_check(True), *checks[1:]]).decision == "promoted"


def test_any_error_fails_closed_even_if_others_pass() -> None:
    checks = [*passing(), Check(name="vs_champion", status="error", detail="cannot load champion")]
    verdict = decide("m", "3", "1", checks)
    assert verdict.decision == "error"
    assert verdict.champion_after == "1"
    assert "cannot load champion" in verdict.reason
    assert decide("m", "3", "1", [contract_check(None, "no report")]).decision == "error"


def test_missing_metric_is_an_error() -> None:
    (check,) = threshold_checks({}, {"f1_macro": 0.5})
    assert check.status == "error"


def test_current_champion_is_not_moved() -> None:
    assert decide("m", "4", "4", passing()).decision == "already-champion"


def test_an_error_metric_must_go_down() -> None:
    better = champion_check("rmse", 9.0, 10.0, 0.5, lower_is_better=True)
    assert better.status == "pass"
    assert "rmse 9.0000 < champion 10.0000 - min_improvement" in better.detail
    assert champion_check("rmse", 9.6, 10.0, 0.5, lower_is_better=True).status == "fail"
    assert champion_check("rmse", 10.0, 10.0, 0.0, lower_is_better=True).status == "fail"  # a tie


def test_a_model_of_another_data_set_is_refused_with_the_reason() -> None:
    ours = {"task": "classification", "inputs": {"a": "numeric"}}
    theirs = {"task": "classification", "inputs": {"b": "numeric"}}
    assert schema_check(ours, ours, "1").status == "pass"
    refused = schema_check(ours, theirs, "3")
    assert refused.status == "fail"
    assert "champion v3 takes" in refused.detail
    assert "its own registered model" in refused.detail


def test_maximums_are_ceilings() -> None:
    checks = threshold_checks({"r2": 0.5, "rmse": 12.0}, {"r2": 0.3}, {"rmse": 10.0})
    assert [(c.name, c.status) for c in checks] == [("min_r2", "pass"), ("max_rmse", "fail")]
    assert checks[1].detail == "rmse 12.0000 > 10.0000"


def test_a_lone_predictor_is_refused_unless_the_contract_allows_it() -> None:
    scores = {"hoursw": 1.0, "wagew": 0.86}
    refused = lone_feature_check(scores, set(), 0.99, classes=True)
    assert refused.status == "fail"
    assert refused.detail.startswith("hoursw (balanced accuracy 1.000) alone predicts the label")
    assert "may_predict_alone: true" in refused.detail
    allowed = lone_feature_check(scores, {"hoursw"}, 0.99, classes=True)
    assert (allowed.status, allowed.detail) == ("pass", "no feature alone above 0.99 (best: wagew 0.860)")
    assert lone_feature_check(scores, set(), 1.0, classes=True).status == "pass"  # 1.0: the check is off
    assert lone_feature_check(None, set(), 0.99, classes=False).status == "pass"  # a version from before it
    assert "R²" in lone_feature_check({"x2": 0.999}, set(), 0.99, classes=False).detail

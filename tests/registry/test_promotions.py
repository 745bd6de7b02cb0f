"""Registering versions, the gates, the four-eyes rule and stage history."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.core.api_errors import Conflict
from apps.core.models import AuditEvent
from apps.registry.models import ModelVersion, RegisteredModel, Stage
from apps.registry.services import (
    model_version_register,
    production_at,
    promotion_approve,
    promotion_reject,
    promotion_request,
)
from tests.factories import evaluated


def register(user, run, name="buyers-model"):
    return model_version_register(user=user, run=run, model_name=name)


def to_stage(version, stage, *, requester, approver):
    promotion = evaluated(promotion_request(user=requester, version=version, target_stage=stage, reason="ready now"))
    failed = promotion.failed_gates
    promotion_approve(user=approver, promotion=promotion, comment="looks good",
                      override_reason="accepted for the test" if failed else "")
    version.refresh_from_db()
    return promotion


def test_a_run_registers_as_version_one_with_its_lineage(engineer, good_run):
    version = register(engineer, good_run)
    assert version.version == 1 and version.stage == "none"
    assert version.artifact_sha256 == good_run.artifact_sha256
    assert version.signature == good_run.signature and version.metrics == good_run.metrics
    model = version.model
    assert model.task_type == "classification" and model.threshold_metric == "f1" and model.threshold_value == 0.7


def test_the_same_run_cannot_be_registered_twice(engineer, good_run):
    register(engineer, good_run)
    with pytest.raises(Conflict, match="already registered"):
        register(engineer, good_run)


def test_a_viewer_cannot_register(viewer, good_run):
    with pytest.raises(PermissionDenied):
        register(viewer, good_run)


def test_the_threshold_gate_passes_and_fails(engineer, good_run):
    version = register(engineer, good_run)
    promotion = evaluated(promotion_request(user=engineer, version=version, target_stage="staging", reason="try it"))
    gate = next(g for g in promotion.gates if g["key"] == "threshold")
    assert gate["passed"] is (good_run.metrics["f1"] >= 0.7)
    RegisteredModel.objects.filter(pk=version.model_id).update(threshold_value=0.999)
    promotion_reject(user=analyst_for(), promotion=promotion, comment="redo")
    again = evaluated(promotion_request(user=engineer, version=version, target_stage="staging", reason="try again"))
    gate = next(g for g in again.gates if g["key"] == "threshold")
    assert gate["passed"] is False and "misses the threshold ≥ 0.999" in gate["detail"]


def analyst_for():
    from tests.conftest import make_user

    return make_user(f"analyst-{timezone.now().timestamp()}", group="analyst")


def test_the_champion_gate_scores_both_on_the_same_holdout(engineer, analyst, good_run, other_run):
    champion = register(engineer, good_run)
    to_stage(champion, "staging", requester=engineer, approver=analyst)
    challenger = register(engineer, other_run)
    promotion = evaluated(promotion_request(user=engineer, version=challenger, target_stage="staging", reason="better?"))
    gate = next(g for g in promotion.gates if g["key"] == "champion")
    same = promotion.evidence["same_holdout"]
    assert same["rows"] == good_run.n_holdout
    assert same["champion"]["metrics"]["f1"] == pytest.approx(good_run.metrics["f1"], abs=1e-12)
    assert same["challenger"]["metrics"]["f1"] == pytest.approx(other_run.metrics["f1"], abs=1e-12)
    worse_by = good_run.metrics["f1"] - other_run.metrics["f1"]
    assert gate["passed"] is (worse_by <= 0.02)
    RegisteredModel.objects.filter(pk=champion.model_id).update(max_regression=-1.0)
    promotion_reject(user=analyst, promotion=promotion, comment="redo with a stricter margin")
    strict = evaluated(promotion_request(user=engineer, version=challenger, target_stage="staging", reason="again"))
    assert next(g for g in strict.gates if g["key"] == "champion")["passed"] is False


def test_the_signature_gate_fails_when_features_change(engineer, analyst, experiment, good_run):
    from apps.experiments.services import run_launch
    from tests.factories import train_inline

    champion = register(engineer, good_run)
    to_stage(champion, "staging", requester=engineer, approver=analyst)
    experiment.features = ["x1", "x2"]
    experiment.save()
    fewer = run_launch(user=engineer, experiment=experiment, algorithm="logistic_regression")
    train_inline(fewer)
    challenger = register(engineer, fewer)
    promotion = evaluated(promotion_request(user=engineer, version=challenger, target_stage="staging", reason="smaller"))
    gate = next(g for g in promotion.gates if g["key"] == "signature")
    assert gate["passed"] is False and "drops features color" in gate["detail"]


def test_the_validation_gate_fails_for_overridden_training_data(engineer, experiment):
    from apps.datasets.services import dataset_version_override
    from tests.factories import make_version, mixed_frame, trained_run

    experiment.dataset.validation_rules = {"min_rows": 5000}
    experiment.dataset.save()
    bad = make_version(experiment.dataset, mixed_frame(300, seed=9), engineer, name="bad.csv")
    dataset_version_override(user=engineer, version=bad, reason="pilot data, accepted knowingly")
    bad.refresh_from_db()
    run = trained_run(engineer, experiment, version=bad)
    version = register(engineer, run)
    promotion = evaluated(promotion_request(user=engineer, version=version, target_stage="staging", reason="pilot"))
    gate = next(g for g in promotion.gates if g["key"] == "validation")
    assert gate["passed"] is False and "override" in gate["detail"]


def test_production_requires_staging_first_unless_the_policy_says_otherwise(engineer, analyst, good_run):
    version = register(engineer, good_run)
    promotion = evaluated(promotion_request(user=engineer, version=version, target_stage="production", reason="ship it"))
    gate = next(g for g in promotion.gates if g["key"] == "staging_first")
    assert gate["passed"] is False
    promotion_reject(user=analyst, promotion=promotion, comment="staging first please")
    to_stage(version, "staging", requester=engineer, approver=analyst)
    promotion = evaluated(promotion_request(user=engineer, version=version, target_stage="production", reason="ship it"))
    assert next(g for g in promotion.gates if g["key"] == "staging_first")["passed"] is True


def test_nobody_approves_their_own_request(analyst, good_run, engineer):
    from django.contrib.auth.models import Group

    from apps.core.roles import ML_ENGINEER

    analyst.groups.add(Group.objects.get(name=ML_ENGINEER))  # an analyst who also requests
    version = register(engineer, good_run)
    promotion = evaluated(promotion_request(user=analyst, version=version, target_stage="staging", reason="mine please"))
    with pytest.raises(PermissionDenied, match="four-eyes"):
        promotion_approve(user=analyst, promotion=promotion, comment="self-approval")
    version.refresh_from_db()
    assert version.stage == "none"


def test_a_request_the_automation_opened_for_someone_is_theirs_under_the_four_eyes_rule(
    analyst, analyst2, good_run, engineer, client_for, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import Group

    from apps.accounts.services import system_user
    from apps.core.roles import ML_ENGINEER
    from apps.registry.services import pending_count_for

    analyst.groups.add(Group.objects.get(name=ML_ENGINEER))  # pushed the change that led to the request
    version = register(engineer, good_run)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        promotion = promotion_request(user=system_user(), version=version, target_stage="staging",
                                      reason="opened by the pipeline", on_behalf_of=analyst)
    assert mail.outbox and analyst.email not in mail.outbox[-1].to and analyst2.email in mail.outbox[-1].to
    assert f"mlops-system (on behalf of {analyst.username}) asks" in mail.outbox[-1].body
    promotion = evaluated(promotion)
    assert promotion.is_own(analyst) and not promotion.is_own(analyst2)
    assert pending_count_for(analyst) == 0 and pending_count_for(analyst2) == 1
    with pytest.raises(PermissionDenied, match="four-eyes"):
        promotion_approve(user=analyst, promotion=promotion, comment="my change is fine")
    page = client_for(analyst).get(promotion.get_absolute_url())
    assert b"on behalf of <strong>analyst</strong>" in page.content and b'name="comment"' not in page.content
    assert client_for(analyst).get(f"/api/v1/promotions/{promotion.pk}/").json()["on_behalf_of"] == "analyst"
    # rejected, then asked for again by a colleague: still the automation's request for `analyst`
    promotion_reject(user=analyst2, promotion=promotion, comment="gates first")
    again = evaluated(promotion_request(user=engineer, version=version, target_stage="staging", reason="once more"))
    assert again.requested_by == engineer and again.on_behalf_of == analyst
    with pytest.raises(PermissionDenied, match="four-eyes"):
        promotion_approve(user=analyst, promotion=again, comment="my change is fine")
    promotion_approve(user=analyst2, promotion=again, comment="checked by someone else",
                      override_reason="accepted for the test" if again.failed_gates else "")
    version.refresh_from_db()
    assert version.stage == "staging"


def test_only_analysts_decide(viewer, engineer, good_run):
    version = register(engineer, good_run)
    promotion = evaluated(promotion_request(user=engineer, version=version, target_stage="staging", reason="please"))
    for user in (viewer, engineer):
        with pytest.raises(PermissionDenied, match="Only analysts"):
            promotion_approve(user=user, promotion=promotion, comment="ok")
        with pytest.raises(PermissionDenied):
            promotion_reject(user=user, promotion=promotion, comment="no")


def test_a_decided_request_cannot_be_decided_again(engineer, analyst, analyst2, good_run):
    version = register(engineer, good_run)
    promotion = to_stage(version, "staging", requester=engineer, approver=analyst)
    with pytest.raises(Conflict, match="already approved by analyst"):
        promotion_reject(user=analyst2, promotion=promotion, comment="too late")


def test_failing_gates_need_an_override_reason_or_are_final_by_policy(engineer, analyst, good_run):
    version = register(engineer, good_run)
    promotion = evaluated(promotion_request(user=engineer, version=version, target_stage="production", reason="ship it"))
    assert promotion.failed_gates
    with pytest.raises(ValidationError) as exc:
        promotion_approve(user=analyst, promotion=promotion, comment="fine")
    assert "override_reason" in exc.value.message_dict
    RegisteredModel.objects.filter(pk=version.model_id).update(allow_override=False)
    with pytest.raises(Conflict, match="forbids overriding"):
        promotion_approve(user=analyst, promotion=promotion, comment="fine", override_reason="urgent business need")
    RegisteredModel.objects.filter(pk=version.model_id).update(allow_override=True)
    promotion_approve(user=analyst, promotion=promotion, comment="fine", override_reason="urgent business need")
    assert AuditEvent.objects.filter(action="promotion.override_gates", note="urgent business need").exists()


def test_approving_production_archives_the_previous_version_and_records_history(
    engineer, analyst, good_run, other_run
):
    first = register(engineer, good_run)
    to_stage(first, "staging", requester=engineer, approver=analyst)
    before_first = timezone.now()
    to_stage(first, "production", requester=engineer, approver=analyst)
    after_first = timezone.now()
    second = register(engineer, other_run)
    to_stage(second, "staging", requester=engineer, approver=analyst)
    to_stage(second, "production", requester=engineer, approver=analyst)
    first.refresh_from_db()
    assert first.stage == "archived" and second.stage == "production"
    assert ModelVersion.objects.filter(model=first.model, stage="production").count() == 1
    assert production_at(first.model, before_first) is None
    assert production_at(first.model, after_first) == first
    assert production_at(first.model, timezone.now()) == second
    history = list(first.transitions.order_by("created_at").values_list("from_stage", "to_stage"))
    assert history == [("none", "staging"), ("staging", "production"), ("production", "archived")]


def test_archived_versions_and_unknown_stages_are_refused(engineer, analyst, good_run, other_run):
    first = register(engineer, good_run)
    with pytest.raises(ValidationError, match="Unknown target stage"):
        promotion_request(user=engineer, version=first, target_stage="moon", reason="why not")
    ModelVersion.objects.filter(pk=first.pk).update(stage=Stage.ARCHIVED)
    with pytest.raises(ValidationError, match="archived"):
        promotion_request(user=engineer, version=first, target_stage="staging", reason="bring it back")


def test_a_second_pending_request_for_the_same_stage_is_a_conflict(engineer, good_run):
    version = register(engineer, good_run)
    promotion_request(user=engineer, version=version, target_stage="staging", reason="first")
    with pytest.raises(Conflict, match="already pending"):
        promotion_request(user=engineer, version=version, target_stage="staging", reason="second")


def test_analysts_are_emailed_when_a_request_opens(engineer, analyst, analyst2, good_run, django_capture_on_commit_callbacks):
    version = register(engineer, good_run)
    with django_capture_on_commit_callbacks(execute=True):
        promotion_request(user=engineer, version=version, target_stage="staging", reason="for review")
    sent = [m for m in mail.outbox if "Approval requested" in m.subject]
    assert len(sent) == 1
    assert sorted(sent[0].to) == ["analyst2@example.com", "analyst@example.com"]


def test_the_pending_count_shows_in_the_navigation_for_analysts(engineer, analyst, viewer, client_for, good_run):
    version = register(engineer, good_run)
    promotion_request(user=engineer, version=version, target_stage="staging", reason="for review")
    assert b'data-testid="pending-count"' in client_for(analyst).get("/models/").content
    assert b'data-testid="pending-count"' not in client_for(viewer).get("/models/").content

"""The model registry: models, their versions and stages, and governed promotions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from apps.core.models import Job
from apps.datasets.models import DatasetVersion
from apps.experiments.models import LoggedModel, Run
from apps.ml.metrics import METRICS


class Stage(models.TextChoices):
    NONE = "none", "None"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"
    ARCHIVED = "archived", "Archived"


PROMOTION_TARGETS = (Stage.STAGING, Stage.PRODUCTION)

# What MLflow clients call our stages (``current_stage``, get-latest-versions).
MLFLOW_STAGE_NAMES = {Stage.NONE: "None", Stage.STAGING: "Staging", Stage.PRODUCTION: "Production",
                      Stage.ARCHIVED: "Archived"}
# Aliases that mean a stage: they resolve to the stage's holder and only a promotion moves them.
RESERVED_ALIASES = {"staging": Stage.STAGING, "production": Stage.PRODUCTION}


class VersionOrigin(models.TextChoices):
    CATALOG = "catalog", "Trained here"
    MLFLOW = "mlflow", "MLflow client"


class RegisteredModel(models.Model):
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    task_type = models.CharField(max_length=20)
    primary_metric = models.CharField(max_length=20)
    # Gate policy, set by admins (defaults chosen at registration, see services.default_policy).
    threshold_metric = models.CharField(max_length=20, help_text="Metric that must meet the threshold (gate 1).")
    threshold_value = models.FloatField(help_text="Gate 1: the holdout value the threshold metric must reach.")
    max_regression = models.FloatField(
        default=0.02, help_text="Gate 2: how much worse than the champion (in metric units) a challenger may be."
    )
    require_staging_first = models.BooleanField(default=True, help_text="Gate 5: production only after staging.")
    allow_override = models.BooleanField(
        default=True, help_text="May an analyst approve a request whose gates failed, with a written reason?"
    )
    tags = models.JSONField(default=dict, blank=True, help_text="MLflow registered-model tags.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="registered_model_name_unique_ci")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("registry:model", args=[self.pk])

    @property
    def threshold_higher_is_better(self) -> bool:
        return METRICS.get(self.threshold_metric, {}).get("higher_is_better", True)


class ModelVersion(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="model_versions")
    artifact_name = models.CharField(max_length=300)
    artifact_sha256 = models.CharField(max_length=64)
    signature = models.JSONField(default=list)
    metrics = models.JSONField(default=dict)
    classes = models.JSONField(default=list, blank=True)
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.NONE, db_index=True)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=dict, blank=True, help_text="MLflow model-version tags.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    stage_changed_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # --- where the artifact came from and whether we can serve it ---
    origin = models.CharField(max_length=10, choices=VersionOrigin.choices, default=VersionOrigin.CATALOG)
    logged_model = models.ForeignKey(LoggedModel, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="model_versions")
    source_uri = models.CharField(max_length=1000, blank=True, help_text="The source the client registered.")
    storage_root = models.CharField(max_length=1000, blank=True,
                                    help_text="The artifact directory under mlflow-artifacts:/ (external versions).")
    model_file = models.CharField(max_length=300, blank=True, help_text="The model file inside that directory.")
    flavors = models.JSONField(default=list, blank=True)
    loader_module = models.CharField(max_length=100, blank=True)
    serialization_format = models.CharField(max_length=30, blank=True)
    sklearn_version = models.CharField(max_length=30, blank=True)
    mlflow_version = models.CharField(max_length=30, blank=True)
    estimator_class = models.CharField(max_length=200, blank=True)
    signature_outputs = models.JSONField(default=list, blank=True)
    untrusted_types = models.JSONField(default=list, blank=True,
                                       help_text="What skops reported the artifact needs beyond its defaults.")
    declared_trusted_types = models.JSONField(default=list, blank=True,
                                              help_text="What the model's own MLmodel trusts (never used).")
    deployable = models.BooleanField(default=False)
    not_deployable_reasons = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_number_unique"),
            # At most one production (and one staging) version per model, enforced by the database.
            models.UniqueConstraint(
                fields=["model"], condition=models.Q(stage="production"), name="one_production_version_per_model"
            ),
            models.UniqueConstraint(
                fields=["model"], condition=models.Q(stage="staging"), name="one_staging_version_per_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    def get_absolute_url(self) -> str:
        return reverse("registry:version", args=[self.pk])

    @property
    def primary_value(self):
        return (self.metrics or {}).get(self.model.primary_metric)

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.signature]

    @property
    def is_external(self) -> bool:
        return self.origin == VersionOrigin.MLFLOW

    @property
    def mlflow_stage(self) -> str:
        return MLFLOW_STAGE_NAMES[self.stage]

    @property
    def uses_pickle(self) -> bool:
        return self.serialization_format in ("pickle", "cloudpickle")


class ModelAlias(models.Model):
    """A free MLflow alias (``models:/name@alias``). Reserved stage aliases are never stored."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=255)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    set_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model", "alias"]
        constraints = [models.UniqueConstraint(fields=["model", "alias"], name="model_alias_unique")]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias}"


class TrustedType(models.Model):
    """A scikit-learn, numpy or scipy type an admin allows in external skops artifacts, beyond the catalog's."""

    name = models.CharField(max_length=200, unique=True,
                            help_text="Fully qualified, as skops reports it, e.g. sklearn.tree._tree.Tree.")
    note = models.CharField(max_length=300, blank=True, help_text="Why it is safe to load.")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StageTransition(models.Model):
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.CharField(max_length=12, choices=Stage.choices)
    to_stage = models.CharField(max_length=12, choices=Stage.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True)
    promotion = models.ForeignKey(
        "PromotionRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="transitions"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model_version}: {self.from_stage} → {self.to_stage}"


class PromotionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class PromotionQuerySet(models.QuerySet):
    def with_owners(self):
        """Prefetch who owns each request (for "by X for Y" and the four-eyes rule) in one query."""
        return self.prefetch_related(
            models.Prefetch("ownerships", queryset=PromotionOwner.objects.select_related("user")))


class PromotionRequest(models.Model):
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="promotions")
    target_stage = models.CharField(max_length=12, choices=[(s.value, s.label) for s in PROMOTION_TARGETS])
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=PromotionStatus.choices, default=PromotionStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The person whose action made the automation open this request (a CI change's author, "
                  "whoever started a retraining by hand); the four-eyes rule applies to them as to the requester.",
    )
    champion = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The target stage's version when the request was opened (the gates compare against it).",
    )
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="PromotionOwner", related_name="+",
        help_text="Everyone whose action shaped this request; none of them may approve it (four-eyes rule).",
    )
    evaluation_dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="For a version trained elsewhere: the data of ours its gates score challenger and champion on.",
    )
    evaluation_target = models.CharField(max_length=200, blank=True,
                                         help_text="The target column of the evaluation data.")
    evaluation_target_how = models.CharField(max_length=300, blank=True,
                                             help_text="How the target column was chosen (named or inferred).")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    gates = models.JSONField(default=list, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    override_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = PromotionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "target_stage"],
                condition=models.Q(status="pending"),
                name="one_pending_request_per_version_and_stage",
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_version} → {self.target_stage} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("registry:promotion", args=[self.pk])

    def own_reasons(self, user) -> list[str]:
        """Why ``user`` may not decide this request, one sentence per reason; empty when they may."""
        if user is None or user.pk is None:
            return []
        return [OwnerReason.refusal(o.reason, version=self.model_version)
                for o in self.ownerships.all() if o.user_id == user.pk]

    def is_own(self, user) -> bool:
        """The four-eyes rule: whether ``user`` is one of the people whose action shaped this request."""
        return bool(self.own_reasons(user))

    def own_because(self, user) -> str:
        first, *more = self.own_reasons(user) or [""]
        return first + "".join(f", and {reason[0].lower()}{reason[1:]}" for reason in more)

    @property
    def owner_list(self) -> list[dict]:
        """Who may not decide this request and why, one entry per person, the requester first."""
        people: dict[int, dict] = {}
        for o in self.ownerships.all():
            entry = people.setdefault(o.user_id, {"user_id": o.user_id, "username": o.user.get_username(), "why": []})
            entry["why"].append(o.get_reason_display())
        return [entry | {"why": " and ".join(entry["why"])} for entry in people.values()]

    @property
    def for_whom(self) -> list[dict]:
        """The owners besides the requester: the "for Y" of "by X for Y"."""
        return [entry for entry in self.owner_list if entry["user_id"] != self.requested_by_id]

    @property
    def gates_done(self) -> bool:
        return bool(self.gates) and self.job is not None and self.job.is_finished

    @property
    def gates_passed(self) -> bool | None:
        if not self.gates:
            return None
        return all(g["passed"] for g in self.gates)

    @property
    def failed_gates(self) -> list[dict]:
        return [g for g in self.gates or [] if not g["passed"]]


class OwnerReason(models.TextChoices):
    """Why someone owns a request; each label completes "X ..." on the request's pages."""

    REQUESTED = "requested", "asked for it"
    ON_BEHALF_OF = "on_behalf_of", "the automation opened it after their action"
    RUN_AUTHOR = "run_author", "launched the training run of the version"
    REGISTRANT = "registrant", "registered the version from the MLflow client"
    CI_AUTHOR = "ci_author", "sent the CI change that trained the version"
    POLICY_EDITOR = "policy_editor", "last changed the monitor policy that retrained it"
    LABELLER = "labeller", "attached labels to the production data it was retrained on"
    EVALUATOR = "evaluator", "uploaded the evaluation data its gates are judged on"

    @classmethod
    def refusal(cls, reason: str, *, version) -> str:
        """The reason told to the owner who tries to approve."""
        return {
            cls.REQUESTED: "You requested this promotion",
            cls.ON_BEHALF_OF: "The automation opened this request after your own action",
            cls.RUN_AUTHOR: (f"You logged the run of {version} with the MLflow client" if version.is_external
                             else f"You launched the training run of {version}"),
            cls.REGISTRANT: f"You registered {version} from the MLflow client",
            cls.CI_AUTHOR: f"You sent the CI change that trained {version}",
            cls.POLICY_EDITOR: f"You last changed the monitor policy that retrained {version}",
            cls.LABELLER: f"You attached labels to the production predictions {version} was retrained on",
            cls.EVALUATOR: f"You uploaded the evaluation data the gates of {version} are judged on",
        }[reason]


# Owned because of what the version is made of (not because of who asked): kept by every later
# request for the same version, whoever asks.
OWNERSHIP_OF_THE_VERSION = (OwnerReason.ON_BEHALF_OF, OwnerReason.RUN_AUTHOR, OwnerReason.REGISTRANT,
                            OwnerReason.CI_AUTHOR, OwnerReason.POLICY_EDITOR, OwnerReason.LABELLER)


class PromotionOwner(models.Model):
    """One person who may not decide a promotion request (four-eyes rule), and why."""

    promotion = models.ForeignKey(PromotionRequest, on_delete=models.CASCADE, related_name="ownerships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=OwnerReason.choices)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["promotion", "user", "reason"], name="one_ownership_per_reason")]

    def __str__(self) -> str:
        return f"{self.user} {self.get_reason_display()} ({self.promotion})"

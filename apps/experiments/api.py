from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.pagination import API_DEFAULT_LIMIT, LIST_PARAMETERS, api_list_response, keyset_page
from apps.core.schema import error
from apps.datasets.models import Dataset, DatasetVersion
from apps.ml.catalog import list_algorithms

from . import openapi as docs
from .models import Experiment, Run
from .services import experiment_create, run_cancel, run_launch


def run_body(r: Run, *, full: bool = True) -> dict:
    body = {
        "id": r.pk,
        "experiment": r.experiment_id,
        "number": r.number,
        "status": r.status,
        "algorithm": r.algorithm,
        "params": r.params,
        "metrics": r.metrics,
        "dataset_version": r.dataset_version_id,
        "dataset_sha256": r.dataset_sha256,
        "source": r.source,
        "rerun_of": r.rerun_of_id,
        "job": r.job.as_dict() if r.job_id else None,
        "created_at": r.created_at.isoformat(),
        "url": r.get_absolute_url(),
    }
    if full:
        body.update({
            "cv_scores": r.cv_scores,
            "cv_mean": r.cv_mean,
            "spec": r.spec,
            "random_state": r.random_state,
            "n_train": r.n_train,
            "n_holdout": r.n_holdout,
            "classes": r.classes,
            "signature": r.signature,
            "importances": r.importances,
            "artifact_sha256": r.artifact_sha256 or None,
            "library_versions": r.library_versions,
            "app_version": r.app_version,
            "trials": [run_body(t, full=False) for t in r.trials.all()] if r.param_grid else [],
        })
    return body


def experiment_body(e: Experiment) -> dict:
    return {
        "id": e.pk,
        "name": e.name,
        "description": e.description,
        "dataset": e.dataset_id,
        "target": e.target,
        "task_type": e.task_type,
        "primary_metric": e.primary_metric,
        "split_seed": e.split_seed,
        "holdout_fraction": e.holdout_fraction,
        "cv_folds": e.cv_folds,
        "created_at": e.created_at.isoformat(),
    }


class ExperimentIn(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.all())
    target = serializers.CharField(max_length=200)
    task_type = serializers.CharField(required=False, allow_blank=True, default="")
    primary_metric = serializers.CharField(required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    split_seed = serializers.IntegerField(required=False, min_value=0, default=42)


class RunIn(serializers.Serializer):
    dataset_version = serializers.PrimaryKeyRelatedField(queryset=DatasetVersion.objects.all(), required=False)
    algorithm = serializers.CharField(max_length=60)
    params = serializers.DictField(required=False, default=dict)
    grid = serializers.DictField(required=False, default=dict)
    random_state = serializers.IntegerField(required=False, min_value=0, default=0)


class AlgorithmListApi(APIView):
    @extend_schema(summary="The algorithm catalog with each hyperparameter's type and default",
                   parameters=docs.ALGORITHM_PARAMETERS,
                   responses={200: docs.AlgorithmBody(many=True), 400: error("Unknown task type")})
    def get(self, request):
        return Response(list_algorithms(request.query_params.get("task_type") or None))


class ExperimentListApi(APIView):
    required_capabilities = {"POST": "launch_training"}
    @extend_schema(summary="List experiments, newest first", parameters=LIST_PARAMETERS,
                   responses={200: docs.ExperimentBody(many=True)})
    def get(self, request):
        return api_list_response(request, Experiment.objects.all(), experiment_body)

    @extend_schema(request=ExperimentIn, summary="Create an experiment", responses={201: docs.ExperimentBody})
    def post(self, request):
        data = ExperimentIn(data=request.data)
        data.is_valid(raise_exception=True)
        experiment = experiment_create(user=request.user, **data.validated_data)
        return Response(experiment_body(experiment), status=status.HTTP_201_CREATED)


class ExperimentDetailApi(APIView):
    @extend_schema(summary="An experiment with its newest runs (runs_next: the rest, page by page)",
                   responses={200: docs.ExperimentDetail})
    def get(self, request, pk: int):
        experiment = get_object_or_404(Experiment, pk=pk)
        page = keyset_page(_runs_of(experiment), size=API_DEFAULT_LIMIT)
        next_url = None
        if page.older is not None:
            next_url = request.build_absolute_uri(reverse("api:run_launch", args=[experiment.pk])) + (
                f"?before={page.older}")
        return Response(experiment_body(experiment) | {"runs": [run_body(r, full=False) for r in page.rows],
                                                       "runs_next": next_url})


def _runs_of(experiment: Experiment):
    return experiment.runs.filter(parent__isnull=True).select_related("job", "experiment").defer(
        "charts", "importances", "signature", "log", "spec", "cv_scores", "latest_metrics", "experiment__description")


class RunLaunchApi(APIView):
    required_capabilities = {"POST": "launch_training"}

    @extend_schema(summary="An experiment's runs, newest first", parameters=LIST_PARAMETERS,
                   responses={200: docs.RunSummary(many=True)})
    def get(self, request, pk: int):
        experiment = get_object_or_404(Experiment, pk=pk)
        return api_list_response(request, _runs_of(experiment), lambda r: run_body(r, full=False))

    @extend_schema(request=RunIn, summary="Launch a training run (202 with its job)",
                   responses={202: docs.RunDetail})
    def post(self, request, pk: int):
        experiment = get_object_or_404(Experiment.objects.select_related("dataset"), pk=pk)
        data = RunIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run = run_launch(
            user=request.user,
            experiment=experiment,
            dataset_version=values.get("dataset_version"),
            algorithm=values["algorithm"],
            params=values.get("params") or {},
            grid=values.get("grid") or None,
            random_state=values.get("random_state", 0),
        )
        return Response(run_body(run), status=status.HTTP_202_ACCEPTED)


class RunDetailApi(APIView):
    @extend_schema(summary="A run: params, metrics, status and lineage", responses={200: docs.RunDetail})
    def get(self, request, pk: int):
        run = get_object_or_404(Run.objects.select_related("job", "experiment"), pk=pk)
        return Response(run_body(run))


class RunCancelApi(APIView):
    required_capabilities = {"POST": "launch_training"}
    @extend_schema(request=None, summary="Cancel a queued or running run",
                   responses={202: docs.RunDetail, 409: error("A grid-search trial has no job of its own")})
    def post(self, request, pk: int):
        run = get_object_or_404(Run.objects.select_related("job", "experiment"), pk=pk)
        if run.job_id is None:
            from apps.core.api_errors import Conflict

            raise Conflict("A grid-search trial has no job of its own; cancel its parent run.")
        run_cancel(user=request.user, run=run)
        run.job.refresh_from_db()
        return Response(run_body(run), status=status.HTTP_202_ACCEPTED)

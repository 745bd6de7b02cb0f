"""The real MLflow client against the live test server, with one of our API tokens."""

from __future__ import annotations

import pytest


@pytest.fixture
def token_for(db):
    from apps.accounts.services import api_token_create

    def make(user, name: str = "notebook") -> str:
        return api_token_create(user=user, name=name)[1]

    return make


@pytest.fixture
def api(engineer, token_for):
    """The protocol as the client sends it, through Django's test client, with the engineer's token."""
    from django.test import Client

    from tests.tracking.helpers import Protocol

    return Protocol(Client(), token_for(engineer))


@pytest.fixture
def mlflow_client(live_server, transactional_db, engineer, token_for, monkeypatch):
    """The mlflow module pointed at our server as a notebook would be: two environment variables."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"{live_server.url}/mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_for(engineer))
    # fail at once instead of retrying for minutes: a 5xx or a lost connection is a defect here
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    mlflow.set_tracking_uri(f"{live_server.url}/mlflow")
    mlflow.set_registry_uri(f"{live_server.url}/mlflow")
    yield mlflow
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.autolog(disable=True)
    mlflow.set_tracking_uri(None)


@pytest.fixture
def churn_frame():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    rows = 300
    tenure = rng.integers(1, 72, rows)
    charges = rng.normal(70, 20, rows).round(2)
    contract = rng.choice(["monthly", "yearly", "two-year"], rows)
    churned = ((tenure < 20) & (contract == "monthly")) | (rng.random(rows) < 0.1)
    return pd.DataFrame({"tenure": tenure, "charges": charges, "contract": contract,
                         "churned": np.where(churned, "yes", "no")})


def forest_pipeline(frame):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pipeline = Pipeline([
        ("prep", ColumnTransformer([("num", StandardScaler(), ["tenure", "charges"]),
                                    ("cat", OneHotEncoder(handle_unknown="ignore"), ["contract"])])),
        ("model", RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0)),
    ])
    return pipeline.fit(frame[["tenure", "charges", "contract"]], frame["churned"])

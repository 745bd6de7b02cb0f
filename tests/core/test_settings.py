"""Settings come from the environment; a bad value stops start-up naming the variable."""

from __future__ import annotations

import os

from tests.conftest import run_python

SETUP = "import django; django.setup(); print('started')"
GOOD_SECRET = "a-long-random-secret-key-for-tests-0123456789-abcdefghijklmnop"


def base_env(**overrides) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECURE_", "SESSION_", "CSRF_", "DJANGO_ALLOW_ASYNC"))
    }
    env.update({"DJANGO_SETTINGS_MODULE": "mlops_web.settings", "DEBUG": "0", "SECRET_KEY": GOOD_SECRET})
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def test_it_refuses_to_start_without_secret_key_when_debug_is_off():
    result = run_python(SETUP, base_env(SECRET_KEY=None))
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_it_starts_without_secret_key_in_debug():
    result = run_python(SETUP, base_env(SECRET_KEY=None, DEBUG="1"))
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_a_database_url_of_an_unknown_scheme_names_the_variable():
    result = run_python(SETUP, base_env(DATABASE_URL="mysql://root@localhost/db"))
    assert result.returncode != 0
    assert "DATABASE_URL must be a postgresql:// or sqlite:/// URL" in result.stderr


def test_a_malformed_database_url_names_the_variable():
    result = run_python(SETUP, base_env(DATABASE_URL="not a url at all"))
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_a_bad_boolean_names_the_variable():
    result = run_python(SETUP, base_env(DEBUG="maybe"))
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_a_bad_broker_url_names_the_variable():
    result = run_python(SETUP, base_env(CELERY_BROKER_URL="amqp-ish:nothing"))
    assert result.returncode != 0
    assert "CELERY_BROKER_URL must be" in result.stderr


def test_a_bad_integer_names_the_variable():
    result = run_python(SETUP, base_env(DATASET_MAX_UPLOAD_BYTES="lots"))
    assert result.returncode != 0
    assert "DATASET_MAX_UPLOAD_BYTES must be an integer" in result.stderr


def test_check_deploy_passes_with_debug_off():
    code = (
        "import sys; from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])"
    )
    result = run_python(code, base_env(ALLOWED_HOSTS="mlops.example.com"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def _manage(*args: str, **env):
    import subprocess
    import sys

    from tests.conftest import ROOT

    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=base_env(**env),
                          capture_output=True, text=True, timeout=120)


def test_a_fresh_checkout_runs_developer_commands_without_a_secret_key():
    result = _manage("check", SECRET_KEY=None, DEBUG=None)
    assert result.returncode == 0, result.stderr
    assert "using development settings (DEBUG=1)" in result.stderr


def test_a_serving_command_still_refuses_to_start_without_a_secret_key():
    result = _manage("runserver", "--noreload", "127.0.0.1:1", SECRET_KEY=None, DEBUG=None)
    assert result.returncode != 0 and "SECRET_KEY is not set" in result.stderr

"""Digits outside ASCII ("²", "١") pass str.isdigit() but not int(): they are refused, never a 500."""

from __future__ import annotations

import pytest

from apps.ml.errors import SpecError
from apps.ml.spec import _as_int


@pytest.mark.parametrize("raw", ["²", "١٢", "-³"])
def test_a_spec_integer_in_other_digits_is_a_spec_error(raw):
    with pytest.raises(SpecError):
        _as_int(raw, "cv_folds", 2, 10)


@pytest.mark.django_db
def test_the_new_experiment_page_ignores_a_dataset_id_in_other_digits(client_for, engineer):
    assert client_for(engineer).get("/experiments/new/", {"dataset": "²"}).status_code == 200

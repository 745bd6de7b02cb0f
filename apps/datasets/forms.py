"""The forms of the dataset pages: each parses what a page posts; the service behind it
checks who may, validates the rules that need the database, and writes the audit event."""

from __future__ import annotations

from django import forms

from apps.ml.profile import ROLES


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"autofocus": True}))
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    tags = forms.CharField(required=False, max_length=1000,
                           widget=forms.TextInput(attrs={"placeholder": "comma-separated, e.g. churn, marketing"}))
    default_target = forms.CharField(required=False, max_length=200,
                                     widget=forms.TextInput(attrs={"placeholder": "optional"}))


class VersionUploadForm(forms.Form):
    # not required here: the service names a missing file in the same words for the page and the API
    file = forms.FileField(required=False, allow_empty_file=True)
    note = forms.CharField(required=False, max_length=500)


class ColumnRoleForm(forms.Form):
    column = forms.CharField(max_length=1000)
    role = forms.ChoiceField(choices=[(r, r) for r in ROLES])


class OverrideForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2, "minlength": 10}))

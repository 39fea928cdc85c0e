"""The Django password policy (`AUTH_PASSWORD_VALIDATORS` with the domain's validator)."""

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from apps.accounts.adapters import DjangoPasswordPolicy
from core.domain.accounts.passwords import MAX_PASSWORD_LENGTH, TOO_LONG_MESSAGE
from core.usecases.accounts.registration import password_problems

pytestmark = pytest.mark.django_db(databases=["default"])
TOO_LONG = "k" + "long-but-fine-" * 10


def test_every_django_password_path_refuses_what_login_would_not_take():
    assert len(TOO_LONG) > MAX_PASSWORD_LENGTH
    with pytest.raises(ValidationError) as refused:
        validate_password(TOO_LONG)
    assert refused.value.messages == [TOO_LONG_MESSAGE]
    validate_password(TOO_LONG[:MAX_PASSWORD_LENGTH])


def test_the_api_names_a_too_long_password_once():
    rejected = password_problems(
        DjangoPasswordPolicy(), " " * 129, email="carol@example.com", full_name="Carol"
    )
    assert rejected is not None
    assert rejected.messages.count(TOO_LONG_MESSAGE) == 1
    assert len(rejected.messages) == len(set(rejected.messages))


def test_a_password_like_the_name_is_refused_in_the_apis_words(api_client):
    response = api_client.post(
        "/api/v1/auth/register",
        {
            "email": "zeb@example.com",
            "password": "zebrafish-jones",
            "full_name": "Zebrafish Jones",
        },
    )
    assert response.status_code == 400, response.content
    assert response.json()["errors"]["password"] == [
        "The password is too similar to the full name."
    ]

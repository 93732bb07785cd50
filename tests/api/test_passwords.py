"""OCP's password rule (error 3009) for every user password obfleet sets."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from obfleet.errors import ApiError
from obfleet.security.passwords import generate_password, policy_problems
from obfleet.services.users import create_user, set_password
from obfleet.store.models.iam import User


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("abcdefgh", "0 digits"),  # the 8-character lower-case ADMIN password
        ("Ab1.Ab1", "7 characters"),
        ("Ab12.Cd34_" + "x" * 23, "33 characters"),
        ("Ab1.cdefgH2x", "1 special"),
        ("AB12.c_EFD", "1 lower-case"),
        ("ab12.cd_ef", "0 upper-case"),
        ("Ab1._cdEfgh", "1 digits"),
        ("Ab12._Cd ef", "other than letters"),
    ],
)
def test_a_password_off_the_rule_is_named_for_what_is_wrong(password, problem):
    assert any(problem in p for p in policy_problems(password)), policy_problems(password)


@pytest.mark.parametrize(
    "password", ["Ab12.Cd_", "Change_Me_12", "Xy+@#$%12zzQ", "A" * 2 + "b" * 2 + "1" * 2 + "%" * 26]
)
def test_a_password_on_the_rule_passes(password):
    assert policy_problems(password) == []


def test_generated_passwords_follow_the_rule():
    assert all(policy_problems(generate_password()) == [] for _ in range(500))


def test_creating_a_user_or_setting_a_password_off_the_rule_is_3009_and_changes_nothing(client):
    db = client.app.state.ctx.db
    with db.transaction() as session:
        with pytest.raises(ApiError) as refused:
            create_user(session, "weak", "abcdefgh", ["ADMIN"])
        assert refused.value.error_code.code == 3009 and refused.value.http_status == 400
        assert "0 digits" in refused.value.message and "abcdefgh" not in refused.value.message
        before = session.scalar(select(User.password_hash).where(User.username == "admin"))
        with pytest.raises(ApiError) as refused:
            set_password(session, "admin", "Admin_pass_1")
        assert refused.value.error_code.code == 3009
    with db.session() as session:
        assert session.scalar(select(User.id).where(User.username == "weak")) is None
        assert session.scalar(select(User.password_hash).where(User.username == "admin")) == before


def test_a_user_that_exists_is_1006_not_the_password_rules_3009(client):
    with client.app.state.ctx.db.transaction() as session, pytest.raises(ApiError) as refused:
        create_user(session, "admin", "Ab12.Cd_ef", ["ADMIN"])
    assert refused.value.error_code.code == 1006 and refused.value.http_status == 409
    assert "Type: user. Parameter: admin." in refused.value.message

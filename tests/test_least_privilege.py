"""Least privilege: every RPC × every kind of caller, over real channels, against the table in
tests/rpc_helpers.py (method → the callers allowed).

Allowed means the call got past authorization: OK, or an error about the request itself
(NOT_FOUND and the like). Denied means UNAUTHENTICATED without a token and PERMISSION_DENIED
with one, and nothing stored. The operator roles are separate: none implies another.
Authorization does not depend on the store, so this runs on SQLite only.
"""

from __future__ import annotations

import grpc
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from services.cli import main as dosis_cli
from services.common import errors
from services.common.auth import ADMIN_ROLES, Policy, TokenVerifier, authorize, mint_dev_token
from tests.rpc_helpers import ADDRESS, CALLERS, TABLE, call, full_name, metadata_for, methods, row_of

DENIED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
# What an allowed caller's minimal request may end in: past authorization, whatever the data.
PAST_AUTHORIZATION = {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND}


def test_every_rpc_has_a_row_and_every_row_an_rpc():
    names = [full_name(m) for m in methods()]
    assert sorted(TABLE) == sorted(names)
    for name, entry in TABLE.items():
        assert entry.allowed <= set(CALLERS), name


def _stored(stack) -> tuple[int, int]:
    with stack.stores.dossiers.connect() as c:
        dossiers = c.execute(sa.text("SELECT count(*) FROM dossiers")).scalar_one()
    with stack.stores.catalog.connect() as c:
        products = c.execute(sa.text("SELECT count(*) FROM products")).scalar_one()
    return dossiers, products


@pytest.mark.parametrize("stores", ["sqlite"], indirect=True)
@pytest.mark.parametrize("method", methods(), ids=full_name)
def test_every_rpc_for_every_caller(stack, method):
    entry = row_of(method)
    channel = stack.channels[ADDRESS[method.containing_service.full_name]]
    frames = [m.SerializeToString() for m in entry.request()]
    wrong = []
    for caller in CALLERS:
        before = _stored(stack)
        code, details = call(channel, method, frames, metadata_for(stack.settings, caller))
        if caller in entry.allowed:
            if code not in PAST_AUTHORIZATION:
                wrong.append(f"{caller}: expected allowed, got {code.name} {details and details.reason}")
        else:
            expected = grpc.StatusCode.UNAUTHENTICATED if CALLERS[caller] is None else grpc.StatusCode.PERMISSION_DENIED
            if code != expected:
                wrong.append(f"{caller}: expected {expected.name}, got {code.name} {details and details.reason}")
            elif _stored(stack) != before:
                wrong.append(f"{caller}: denied, yet the stores changed")
    assert not wrong, "\n".join(wrong)


@pytest.fixture
def verifier(settings) -> TokenVerifier:
    return TokenVerifier(settings.jwks, settings.jwt_issuer, settings.jwt_audience)


@pytest.mark.parametrize(
    "policy, role", [(Policy.CATALOG_ADMIN, "catalog-admin"), (Policy.AUDITOR, "auditor"), (Policy.KEY_ADMIN, "key-admin")]
)
def test_each_admin_policy_needs_its_own_role_and_no_other(settings, verifier, policy, role):
    def token(*roles: str) -> str:
        return mint_dev_token(settings, {"sub": "operator", "dosis_admin_roles": list(roles)})

    assert authorize(policy, verifier, token(role)).admin_roles == {role}
    assert role in authorize(policy, verifier, token(*ADMIN_ROLES)).admin_roles
    others = [r for r in ADMIN_ROLES if r != role]
    person = mint_dev_token(settings, {"sub": "p", "dosis_enterprise": "0316380841", "dosis_roles": [role]})
    supplier = mint_dev_token(settings, {"sub": "s", "dosis_supplier": role})
    for denied in (token(*others), token(), token(role.upper()), person, supplier):
        with pytest.raises(errors.DosisError) as info:
            authorize(policy, verifier, denied)
        assert (info.value.code, info.value.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ADMIN_ROLE_REQUIRED")
        assert role in info.value.message
    with pytest.raises(errors.DosisError) as info:
        authorize(policy, verifier, None)
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_the_cli_mints_each_operator_role(settings, verifier):
    assert ADMIN_ROLES == ("catalog-admin", "auditor", "key-admin")
    runner = CliRunner()
    env = {"DOSIS_STATE_DIR": str(settings.state_dir)}
    for role in ADMIN_ROLES:
        result = runner.invoke(dosis_cli, ["token", "admin", role], env=env)
        assert result.exit_code == 0, result.output
        assert verifier.verify(result.output.strip()).admin_roles == {role}
    refused = runner.invoke(dosis_cli, ["token", "admin", "superuser"], env=env)
    assert refused.exit_code != 0 and "superuser" in refused.output

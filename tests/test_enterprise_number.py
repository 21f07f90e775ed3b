import pytest

from services.common.enterprise_number import InvalidEnterpriseNumber, canonical_enterprise_number


@pytest.mark.parametrize("number", ["0316380841", "0534669938", "0687655467", "0203201340"])
def test_valid_numbers_are_canonical(number):
    assert canonical_enterprise_number(number) == number


@pytest.mark.parametrize(
    "written",
    ["0316.380.841", "BE0316380841", "be0316380841", "0316 380 841", "BE 0316.380.841", " 0316380841 ", "0316-380-841"],
)
def test_accepted_forms_give_the_canonical_digits(written):
    assert canonical_enterprise_number(written) == "0316380841"


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("", "is required"),
        ("BE", "is required"),
        ("0316380842", "check digits"),  # last digit off by one
        ("0316380814", "check digits"),  # check digits swapped
        ("316380841", "10 digits"),  # nine digits
        ("03163808411", "10 digits"),
        ("2316380841", "start with 0 or 1"),
        ("O316380841", "10 digits"),  # a letter O
        ("０３１６３８０８４１", "10 digits"),  # full-width digits are not ASCII
        ("NL0316380841", "10 digits"),
    ],
)
def test_invalid_numbers_are_refused_with_a_reason(written, reason):
    with pytest.raises(InvalidEnterpriseNumber, match=reason):
        canonical_enterprise_number(written)


def test_check_digits_follow_mod_97():
    # Every first-eight digits has exactly one valid pair of check digits.
    first8 = "03163808"
    valid = [f"{first8}{cd:02d}" for cd in range(100) if _ok(f"{first8}{cd:02d}")]
    assert valid == [f"{first8}{97 - int(first8) % 97:02d}"]


def _ok(number: str) -> bool:
    try:
        canonical_enterprise_number(number)
    except InvalidEnterpriseNumber:
        return False
    return True

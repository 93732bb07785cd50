"""obfleet's own error codes never take a number OCP's error table gives another meaning: a
script that reads `error.code` as OCP documents it must not misread one of ours."""

from __future__ import annotations

from obfleet.errors import ErrorCode

# OCP's general codes (ocp-docs/guide/appendix/400.ocp-error-information-table.md, the block
# obfleet's extensions are numbered in).
OCP_GENERAL_CODES = {
    *range(1001, 1009),
    *range(1010, 1014),
    *range(1113, 1119),
    1200,
    1201,
    1500,
    1999,
}
EXTENSIONS = {
    ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    ErrorCode.PAYLOAD_TOO_LARGE,
    ErrorCode.METADB_UNREACHABLE,
    ErrorCode.NO_SPACE_LEFT,
}


def test_extension_codes_are_not_ocps() -> None:
    taken = {code: code.value[0] for code in EXTENSIONS if code.value[0] in OCP_GENERAL_CODES}
    assert taken == {}


def test_every_code_means_one_thing() -> None:
    numbers = [code.value[0] for code in ErrorCode]
    assert len(numbers) == len(set(numbers))

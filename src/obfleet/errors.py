"""OCP's error codes and the one exception every layer raises to report them.

Codes and message templates come from OCP's error table
(ocp-docs/guide/appendix/400.ocp-error-information-table.md); the HTTP status is the one OCP
pairs with each kind of error. Extension codes keep OCP's numbering blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum


class ErrorCode(Enum):
    # (numeric code, HTTP status, message template)
    BAD_REQUEST = (1003, 400, "The request is invalid. Cause: {0}.")
    INVALID_VALUE = (1001, 400, "You must specify a valid value for {0}.")
    TIMEOUT = (1004, 500, "The request timed out. Please try again.")
    CONFLICT = (1005, 409, "{0}")
    UNEXPECTED = (1115, 500, "An unexpected error occurred.")
    NOT_FOUND = (1116, 404, "The specified object does not exist. {0}")
    METHOD_NOT_ALLOWED = (1008, 405, "The method is not supported: {0} {1}.")
    # Extensions (OCP's table has no such codes), numbered after its last code of the block
    # (1118, "the time range is too long"). The upload's type or size is wrong:
    UNSUPPORTED_MEDIA_TYPE = (1122, 415, "Unsupported content type: {0}.")
    PAYLOAD_TOO_LARGE = (1119, 413, "The upload is larger than the limit of {0} bytes.")
    # The metadb or the disk is the problem, not the request, and the same request will
    # succeed once it is back.
    METADB_UNREACHABLE = (
        1120,
        503,
        "The metadb ({0}) is unreachable. Please try again once it is back. Cause: {1}",
    )
    NO_SPACE_LEFT = (
        1121,
        507,
        "There is no space left on {0}. Free some space and try again.",
    )
    NOT_LOGGED_IN = (3000, 401, "You are not logged on or a logon error occurred. {0}")
    BAD_CREDENTIALS = (
        3004,
        401,
        "The username or password you entered is invalid. Please try again. You can retry {0}"
        " more times.",
    )
    # OCP's 3014 names the address; obfleet locks (user, address) pairs, so it names both.
    LOGIN_LOCKED = (
        3014,
        429,
        "Requests sent from the IP address {0} for user {1} are restricted. Please try again"
        " in {2} seconds.",
    )
    PASSWORD_INVALID = (
        3009,
        400,
        "The specified password is invalid. It must be 8 to 32 characters in length and contain"
        " at least two digits, two uppercase letters, two lowercase letters, and two special"
        " characters. Special characters include . _ + @ # $ % ({0}).",
    )
    FORBIDDEN = (3100, 403, "You are not authorized to perform this operation: {0}.")
    # OCP's 1006, "a resource with the specified name already exists" (3009 is the password rule).
    USER_EXISTS = (
        1006,
        409,
        "A resource with the specified name already exists. Type: user. Parameter: {0}. "
        "Please specify another name and try again.",
    )
    USER_NOT_FOUND = (3010, 404, "The user {0} does not exist.")
    TASK_NOT_FOUND = (4001, 404, "The {0} task does not exist.")
    TASK_STATE_INVALID = (
        4007,
        409,
        "The operation is not allowed because the {0} task is in the {1} state.",
    )
    HOST_EXISTS = (7001, 409, "The specified host <{0}:{1}> already exists.")
    HOST_IN_USE = (7004, 409, "The host {0} is offline or in use. {1}")
    HOST_NOT_FOUND = (7005, 404, "The host <{0}> does not exist.")
    PACKAGE_PARSE_ERROR = (7506, 400, "An error occurred while parsing the software package: {0}")
    PACKAGE_IN_USE = (7507, 409, "The operation failed because the software package is in use: {0}")
    PACKAGE_EXISTS = (7512, 409, "A software package with a name of {0} already exists.")
    PACKAGE_TYPE_INVALID = (7513, 400, "The specified software package type is invalid: {0}")
    PACKAGE_NOT_FOUND = (7514, 404, "The software package {0} does not exist.")
    CREDENTIAL_NOT_FOUND = (7601, 404, "The credential {0} does not exist.")
    CREDENTIAL_IN_USE = (7602, 409, "The credential {0} is in use: {1}")
    OB_CLUSTER_NOT_FOUND = (11001, 404, "The specified cluster (ID: {0}) does not exist.")
    OB_CLUSTER_NAME_NOT_FOUND = (11002, 404, "The specified cluster (name: {0}) does not exist.")
    # OCP's 11033; its 11003 is "the type of the cluster does not support this operation".
    OB_CLUSTER_EXISTS = (11033, 409, "The cluster to be imported already exists. {0}")
    OB_CLUSTER_IN_USE = (11020, 409, "The cluster {0} is in use: {1}")
    OBPROXY_CLUSTER_NOT_FOUND = (
        21001,
        404,
        "The OBProxy cluster with an ID of {0} does not exist.",
    )
    OBPROXY_NOT_FOUND = (21002, 404, "The OBProxy server with an ID of {0} does not exist.")
    OBPROXY_STATE_INVALID = (
        21003,
        409,
        "The OBProxy server with an ID of {0} and a status of {1} does not exist.",
    )
    OBPROXY_CLUSTER_EXISTS = (21004, 409, "An OBProxy cluster named {0} already exists.")

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def http_status(self) -> int:
        return self.value[1]

    @property
    def template(self) -> str:
        return self.value[2]


class ApiError(Exception):
    """An error the operator can act on; the API turns it into OCP's error envelope."""

    def __init__(self, code: ErrorCode, *args: object, message: str | None = None) -> None:
        self.error_code = code
        self.message = message or code.template.format(*args)
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return self.error_code.http_status

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers that go with the error (e.g. Retry-After)."""
        return {}


def bad_request(cause: str) -> ApiError:
    return ApiError(ErrorCode.BAD_REQUEST, cause)

"""The one place that builds the Batch service's error responses.

Wire shape (top level, never wrapped in "odata.error", or the SDK's
``err.error.code`` reads None):
    {"odata.metadata": ".../$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element",
     "code": "PoolNotFound",
     "message": {"lang": "en-US", "value": "The specified pool does not exist.\\nRequestId:...\\nTime:..."},
     "values": [{"key": "Reason", "value": "..."}]}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

# Default messages, worded as the real service words them where known.
MESSAGES = {
    "AuthenticationFailed": "Server failed to authenticate the request. Make sure the value of "
    "Authorization header is formed correctly including the signature.",
    "PoolExists": "The specified pool already exists.",
    "JobExists": "The specified job already exists.",
    "TaskExists": "The specified task already exists.",
    "PoolNotFound": "The specified pool does not exist.",
    "JobNotFound": "The specified job does not exist.",
    "TaskNotFound": "The specified task does not exist.",
    "NodeNotFound": "The specified node does not exist.",
    "FileNotFound": "The specified file does not exist.",
    "ResourceNotFound": "The specified resource does not exist.",
    "PoolBeingDeleted": "The specified pool has been marked for deletion and is being reclaimed.",
    "JobBeingDeleted": "The specified job has been marked for deletion and is being garbage collected.",
    "JobBeingTerminated": "The specified job is being terminated.",
    "JobCompleted": "The specified job is already in a completed state.",
    "JobNotActive": "The specified job is not in an active state.",
    "TaskCompleted": "The specified task is already in a completed state.",
    "TaskNotCompleted": "The specified task is not in the completed state.",
    "TaskSucceeded": "The specified task completed successfully and cannot be reactivated.",
    "TaskIdSameAsJobPreparationTask": "The specified task id is the same as the job preparation task id.",
    "TaskIdSameAsJobReleaseTask": "The specified task id is the same as the job release task id.",
    # Recorded (Azure/azure-sdk-assets js/sdk/batch/batch-rest/recordings/node, should_fail_to_job_preprelease_status).
    "JobPreparationTaskOrReleaseTaskNotSpecified": "The specified job does not have either job preparation task or "
                                                   "job release task.",
    "OperationInvalidForCurrentState": "The specified operation is not valid for the current state of the resource.",
    "InvalidPropertyValue": "The value provided for one of the properties in the request body is invalid.",
    "MissingRequiredProperty": "A required property was not specified in the request body.",
    "InvalidRequestBody": "The specified Request Body is not syntactically valid.",
    "MissingRequiredQueryParameter": "A query parameter that's mandatory for this request is not specified.",
    "InvalidQueryParameterValue": "Value for one of the query parameters specified in the request URI is invalid.",
    "OutOfRangeQueryParameterValue": "One of the query parameters specified in the request URI is outside the "
                                     "permissible range.",
    "UnsupportedQueryParameter": "One of the query parameters specified in the request URI is not supported.",
    "InvalidUri": "The requested URI does not represent any resource on the server.",
    "UnsupportedHttpVerb": "The resource doesn't support the specified HTTP verb.",
    "InvalidAutoScalingSettings": "The auto scaling settings of the pool are invalid.",
    "AutoScaleFormulaTooLong": "The specified autoscale formula is too long.",
    "TaskDependenciesNotSpecifiedOnJob": "The specified job does not have task dependencies enabled.",
    "RequestBodyTooLarge": "The request body is too large and exceeds the maximum permissible limit.",
    "InvalidRange": "The range specified is invalid for the current size of the resource.",
    "ConditionNotMet": "The condition specified using HTTP conditional header(s) is not met.",
    "InvalidHeaderValue": "The value for one of the HTTP headers is not in the correct format.",
    "InternalError": "Server encountered an internal error. Please try again after some time.",
    # Quota codes are documented in the Batch error list; their message text is ours.
    "PoolQuotaReached": "The specified account has reached its quota of pools.",
    "ActiveJobAndScheduleQuotaReached": "The specified account has reached its quota of active jobs and job schedules.",
    # Job schedules: NotFound and BeingDeleted as recorded (Azure/azure-sdk-assets, net/.../
    # BatchJobScheduleIntegrationTests/JobScheduleAutoPool.json, java/.../JobScheduleTests.canUpdateJobScheduleState
    # .json); the others worded like the job codes (the .NET SDK's BatchErrorCodeStrings names them).
    "JobScheduleNotFound": "The specified job schedule does not exist.",
    "JobScheduleBeingDeleted": "The specified job schedule has been marked for deletion and is being reclaimed.",
    "JobScheduleExists": "The specified job schedule already exists.",
    "JobScheduleBeingTerminated": "The specified job schedule is being terminated.",
    "JobScheduleCompleted": "The specified job schedule is already in a completed state.",
    "JobScheduleDisabled": "The specified job schedule is disabled.",
    "JobWithSameIdExists": "A job with the specified job schedule id exists. Job and job schedule cannot have the "
                           "same id.",
    # The reverse (a job add with a schedule's id) and unknown application packages: the codes and messages of the
    # Batch error-code list ("Batch Status and Error Codes"); the real answer's values are in service/resource_ids.py.
    "JobScheduleWithSameIdExists": "A job schedule with the specified job id exists. Job and job schedule cannot "
                                   "have the same id.",
    "InvalidApplicationPackageReferences": "One or more application package references could not be satisfied. "
                                           "This occurs if the application id or version does not exist or is not "
                                           "active, or if the reference did not specify a version and there is no "
                                           "default version configured.",
    # Node operations in a state that does not allow them: the codes and messages of the Batch error-code list
    # ("Batch Status and Error Codes"); NodeAlreadyInTargetSchedulingState is what Microsoft's own integration
    # test expects of an enable on an enabled node (azure-sdk-for-net, ComputeNodeIntegrationTests
    # OnlineOfflineTest).
    "NodeBeingCreated": "The specified node is being created",
    "NodeBeingStarted": "The specified node is being started",
    "NodeBeingReimaged": "The specified node is being reimaged",
    "NodeBeingRebooted": "The specified node is being rebooted",
    "NodeStateUnusable": "The state of the specified node is unusable",
    "NodeAlreadyInTargetSchedulingState": "The specified node is already in the target scheduling state.",
    # Node users: the codes of the Batch error-code list (BatchErrorCodeStrings); the messages are worded like the
    # other Exists / NotFound ones (the service's own were not found).
    "NodeUserExists": "The specified node user already exists.",
    "NodeUserNotFound": "The specified node user does not exist.",
}


class BatchServiceError(Exception):
    """A request the service refuses: its HTTP status (the class's), code, message and key/value details.

    One subclass per HTTP status, as moto models AWS's errors: the status belongs to the kind of error,
    the code to the instance (AuthenticationFailed answers 403 for a bad signature, 401 for a bad token).
    Build them with ``service_error`` or the helpers below; api/server.py renders them, in one place."""
    status: int = 500

    def __init__(self, code: str, message: str | None = None, values: list[tuple[str, str]] | None = None) -> None:
        self.code = code
        self.message = message or MESSAGES.get(code, code)
        self.values = list(values or [])
        self.headers: dict[str, str] = {}   # extra response headers (e.g. a 401's WWW-Authenticate)
        super().__init__(f"{self.status} {code}: {self.message}")


class BadRequest(BatchServiceError):
    status = 400


class Unauthorized(BatchServiceError):
    status = 401


class Forbidden(BatchServiceError):
    status = 403


class NotFound(BatchServiceError):
    status = 404


class MethodNotAllowed(BatchServiceError):
    status = 405


class Conflict(BatchServiceError):
    status = 409


class PreconditionFailed(BatchServiceError):
    status = 412


class RequestEntityTooLarge(BatchServiceError):
    status = 413


class RangeNotSatisfiable(BatchServiceError):
    status = 416


class TooManyRequests(BatchServiceError):
    status = 429


class InternalServerError(BatchServiceError):
    status = 500


class ServiceUnavailable(BatchServiceError):
    status = 503


ERROR_CLASSES: dict[int, type[BatchServiceError]] = {
    cls.status: cls for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict,
                                PreconditionFailed, RequestEntityTooLarge, RangeNotSatisfiable, TooManyRequests,
                                InternalServerError, ServiceUnavailable)}


def service_error(status: int, code: str, message: str | None = None, **values: object) -> BatchServiceError:
    """The error of ``status`` (its class from ERROR_CLASSES); keyword arguments become the "values" list in
    the given order."""
    if status not in ERROR_CLASSES:
        raise ValueError(f"no Batch error class for HTTP status {status}; add one to ERROR_CLASSES")
    return ERROR_CLASSES[status](code, message, [(k, str(v)) for k, v in values.items()])


def error_body(err: BatchServiceError, base_url: str, request_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The JSON object the service sends for ``err`` (RequestId/Time appended as the service does)."""
    now = now or datetime.now(timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
    body: dict[str, Any] = {
        "odata.metadata": f"{base_url}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element",
        "code": err.code,
        "message": {"lang": "en-US", "value": f"{err.message}\nRequestId:{request_id}\nTime:{stamp}"},
    }
    if err.values:
        body["values"] = [{"key": k, "value": v} for k, v in err.values]
    return body


# A pool's resizeErrors: what the last resize could not do (not an HTTP answer). The service's messages.
RESIZE_MESSAGES = {
    # What a real pool showed (Azure portal, MicrosoftDocs/azure-docs#53298): this message and no values.
    "AccountCoreQuotaReached": "The specified account has reached core quota",
    # [inferred] The .NET SDK's description of the code (PoolResizeErrorCodes), whose description of
    # AccountCoreQuotaReached is the service's message word for word; no real answer was found.
    "AccountLowPriorityCoreQuotaReached": "The specified account has reached low priority core quota",
}


@dataclass(frozen=True)
class ResizeError:
    """One entry of a pool's resizeErrors: code, message and values (the spec's NameValuePair list)."""
    code: str
    message: str
    values: tuple[tuple[str, str], ...] = ()


def resize_error(code: str, **values: object) -> ResizeError:
    """The resize error ``code`` with the service's message; keyword arguments become its values, in order."""
    return ResizeError(code, RESIZE_MESSAGES.get(code, code), tuple((k, str(v)) for k, v in values.items()))


def invalid_property(name: str, value: object, reason: str) -> BatchServiceError:
    return service_error(400, "InvalidPropertyValue", PropertyName=name, PropertyValue=value, Reason=reason)


def missing_property(name: str) -> BatchServiceError:
    return service_error(400, "MissingRequiredProperty", PropertyName=name)


def not_found(code: str) -> NotFound:
    return NotFound(code)


def conflict(code: str, reason: str | None = None) -> Conflict:
    return Conflict(code, None, [("Reason", reason)] if reason else None)

"""{{name}}: a fulfillment module (WIT `commerce:fulfillment@1.1.0`, in wit/)
that fulfills the lines of product type {{product_type}} by calling one HTTP
service.

Config (settings.toml `[modules.config]`, or `run-module --config`):
`service_url` (required), such as `https://service.example.com`; the operator
also lists it in the module's `allowed_hosts`. For each line the module POSTs
`{service_url}/fulfillments` with the line's idempotency key and stores the
`reference` the service answers on the line; a refund POSTs
`{service_url}/revocations`.

Built by componentize-py (./build.sh); `componentize-py -d wit -w
fulfillment-module bindings .` writes the bindings (`wit_world`) next to this
file for an editor.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, http, log
from wit_world.imports.types import (
    Attribute,
    Completion,
    Failure,
    FailureKind,
    Line,
    LineOutcome,
    ModuleInfo,
    Order,
    Outcome_Complete,
    Outcome_Failed,
    Revocation,
    RevocationCause_Refund,
    RevokeOutcome,
    RevokeOutcome_NotRevoked,
    RevokeOutcome_Revoked,
)

NAME = "{{name}}"
VERSION = "0.1.0"
# The product type this module fulfills, spelled as in the catalog.
PRODUCT_TYPE = {{product_type}}
# The config key of the service's base URL.
SERVICE_URL = "service_url"


class ConfigurationError(Exception):
    """The module's config is wrong: the message says how."""


class WitWorld(wit_world.WitWorld):
    def describe(self) -> ModuleInfo:
        return ModuleInfo(name=NAME, version=VERSION, product_types=[PRODUCT_TYPE])

    def supports_lines(self, order: Order, lines: list[Line]) -> list[bool]:
        return [line.product.product_type == PRODUCT_TYPE for line in lines]

    def fulfill_product(self, order: Order, lines: list[Line], email_opt_in: bool) -> list[LineOutcome]:
        try:
            service_url = configured_service_url()
        except ConfigurationError as why:
            return [failed(line, Failure(FailureKind.CONFIGURATION, str(why))) for line in lines]
        log.log(log.Level.INFO, f"fulfilling {len(lines)} line(s) through {service_url}")
        return [fulfill(service_url, order, line, email_opt_in) for line in lines]

    def revoke_line(self, order: Order, line: Line, revocation: Revocation) -> RevokeOutcome:
        try:
            service_url = configured_service_url()
        except ConfigurationError as why:
            return RevokeOutcome_NotRevoked(str(why))
        body = {
            "order_number": order.number,
            "line_id": line.id,
            "reference": stored(line, "service_reference"),
        }
        if isinstance(revocation.cause, RevocationCause_Refund):
            body["refund_id"] = revocation.cause.value
        try:
            response = post(f"{service_url}/revocations", revocation.idempotency_key, body)
        except Err as error:
            return RevokeOutcome_NotRevoked(transport_failure(service_url, error.value).message)
        if 200 <= response.status < 300:
            return RevokeOutcome_Revoked(None)
        return RevokeOutcome_NotRevoked(answered(response))


def configured_service_url() -> str:
    """The service's base URL from the config, without a trailing `/`."""
    url = (config.get(SERVICE_URL) or "").strip()
    if not url:
        raise ConfigurationError(f"config key `{SERVICE_URL}` is not set (settings.toml `[modules.config]`)")
    return url.rstrip("/")


def fulfill(service_url: str, order: Order, line: Line, email_opt_in: bool) -> LineOutcome:
    """POST /fulfillments, with the line's idempotency key so that a retry
    does not fulfill it twice."""
    body = {
        "order_number": order.number,
        "line_id": line.id,
        "sku": line.product.sku,
        "quantity": line.quantity,
        "username": order.user.username,
        "email": order.user.email,
        "email_opt_in": email_opt_in,
    }
    try:
        response = post(f"{service_url}/fulfillments", line.idempotency_key, body)
    except Err as error:
        return failed(line, transport_failure(service_url, error.value))
    if not 200 <= response.status < 300:
        return failed(line, Failure(FailureKind.SERVER, answered(response)))
    attributes = []
    try:
        reference = json.loads(response.body).get("reference")
    except (ValueError, AttributeError):
        reference = None
    if isinstance(reference, str):
        attributes.append(Attribute(name="service_reference", value=reference))
    return LineOutcome(line_id=line.id, outcome=Outcome_Complete(Completion(attributes=attributes, note=None)))


def post(url: str, idempotency_key: str, body: dict) -> http.Response:
    """POSTs `body` as JSON through the host; raises `Err(http.Error)` when
    no answer came."""
    headers = [http.Header("Content-Type", "application/json"), http.Header("Idempotency-Key", idempotency_key)]
    return http.send(http.Request("POST", url, headers, json.dumps(body).encode(), None))


def transport_failure(service_url: str, error: http.Error) -> Failure:
    """The failure for a call that got no answer: the line's status tells
    staff what to look at."""
    if isinstance(error, http.Error_ConnectFailed):
        return Failure(FailureKind.NETWORK, f"cannot reach the service at {service_url}: {error.value}")
    if isinstance(error, http.Error_Timeout):
        return Failure(FailureKind.TIMEOUT, f"the service at {service_url} did not answer in time")
    if isinstance(error, http.Error_Refused):
        return Failure(
            FailureKind.CONFIGURATION,
            f"the host refused the call to {service_url} (is it in allowed_hosts?): {error.value}",
        )
    if isinstance(error, http.Error_InvalidRequest):
        return Failure(FailureKind.CONFIGURATION, f"cannot call {service_url} (check `{SERVICE_URL}`): {error.value}")
    if isinstance(error, http.Error_ResponseTooLarge):
        return Failure(FailureKind.SERVER, f"the service's answer is larger than {error.value} bytes")
    return Failure(FailureKind.SERVER, f"calling {service_url} failed: {error.value}")


def answered(response: http.Response) -> str:
    """The status and the start of the body, for staff."""
    excerpt = response.body.decode("utf-8", "replace").strip()[:200]
    return f"the service answered {response.status}: {excerpt}"


def failed(line: Line, failure: Failure) -> LineOutcome:
    return LineOutcome(line_id=line.id, outcome=Outcome_Failed(failure))


def stored(line: Line, name: str) -> str | None:
    """An attribute stored on the line when it was fulfilled."""
    return next((attribute.value for attribute in line.stored_attributes if attribute.name == name), None)

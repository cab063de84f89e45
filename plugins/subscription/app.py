"""Fulfills "Subscription" lines: grants a subscription through an HTTP
subscription service, stores its id on the line, and cancels it when the line
is refunded. Built into a WebAssembly component against wit/1.1
(commerce:fulfillment@1.1.0) with componentize-py: scripts/build-components.
README.md beside this file gives the config and the service's contract.
"""

import json
from typing import List, Optional
from urllib.parse import quote

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

MODULE = "subscription"
VERSION = "1.0.0"
PRODUCT_TYPE = "Subscription"
# The line attribute that keeps the service's id for the subscription.
SUBSCRIPTION_ID = "subscription_id"
# The most months one line may grant (a typo in the catalog, not a plan).
MAX_MONTHS = 120


class LineFailure(Exception):
    """A line failure of `kind` with a message for staff."""

    def __init__(self, kind: FailureKind, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def attribute(attributes: List[Attribute], name: str) -> Optional[str]:
    for found in attributes:
        if found.name == name and found.value.strip():
            return found.value
    return None


class Settings:
    """The module's config: `service_url` (required), `timeout_ms` (optional)."""

    def __init__(self) -> None:
        service_url = config.get("service_url")
        if service_url is None or not service_url.strip():
            raise LineFailure(
                FailureKind.CONFIGURATION,
                f"module {MODULE}: config key `service_url` is not set in settings.toml",
            )
        self.service_url = service_url.rstrip("/")
        timeout = config.get("timeout_ms")
        self.timeout_ms: Optional[int] = None
        if timeout is not None:
            if not timeout.isdigit() or not 0 < int(timeout) < 2**32:
                raise LineFailure(
                    FailureKind.CONFIGURATION,
                    f"module {MODULE}: config key `timeout_ms` is not a number of milliseconds: {timeout}",
                )
            self.timeout_ms = int(timeout)


def transport_failure(error: http.Error, what: str) -> LineFailure:
    """A connection failure is a network error, a time-out a timeout error,
    a refused or malformed request a configuration error (the settings must
    change), anything else a server error."""
    if isinstance(error, http.Error_ConnectFailed):
        return LineFailure(FailureKind.NETWORK, f"could not reach the subscription service to {what}: {error.value}")
    if isinstance(error, http.Error_Timeout):
        return LineFailure(FailureKind.TIMEOUT, f"the subscription service did not answer in time to {what}")
    if isinstance(error, http.Error_Refused):
        return LineFailure(FailureKind.CONFIGURATION, f"module {MODULE}: the host refused the request to {what}: {error.value}")
    if isinstance(error, http.Error_InvalidRequest):
        return LineFailure(FailureKind.CONFIGURATION, f"module {MODULE}: invalid request to {what}: {error.value}")
    if isinstance(error, http.Error_ResponseTooLarge):
        return LineFailure(FailureKind.SERVER, f"the subscription service's answer to {what} was larger than {error.value} bytes")
    return LineFailure(FailureKind.SERVER, f"module {MODULE}: {what}: {error.value}")


def send_json(settings: Settings, url: str, idempotency_key: str, body: dict, what: str) -> Optional[dict]:
    """POSTs `body` as JSON through the host; the JSON answer of a 2xx, or a
    LineFailure that says what failed."""
    request = http.Request(
        method="POST",
        url=url,
        headers=[
            http.Header(name="Idempotency-Key", value=idempotency_key),
            http.Header(name="Accept", value="application/json"),
            http.Header(name="Content-Type", value="application/json"),
        ],
        body=json.dumps(body).encode(),
        timeout_ms=settings.timeout_ms,
    )
    try:
        response = http.send(request)
    except Err as error:
        raise transport_failure(error.value, what)
    try:
        answer = json.loads(response.body) if response.body else None
    except ValueError:
        answer = None
    if not 200 <= response.status <= 299:
        reason = ""
        if isinstance(answer, dict) and isinstance(answer.get("message"), str) and answer["message"]:
            reason = f": {answer['message']}"
        raise LineFailure(FailureKind.SERVER, f"subscription service answered {response.status} to {what}{reason}")
    return answer if isinstance(answer, dict) else None


def plan_of(line: Line) -> tuple:
    """The line's plan and months, from the product's `plan` and `months`
    attributes; a product without them is set up wrong."""
    plan = attribute(line.product.attributes, "plan")
    if plan is None:
        raise LineFailure(FailureKind.CONFIGURATION, f"product {line.product.sku} has no `plan` attribute")
    months = attribute(line.product.attributes, "months") or "1"
    if not months.isdigit() or not 1 <= int(months) <= MAX_MONTHS:
        raise LineFailure(
            FailureKind.CONFIGURATION,
            f"product {line.product.sku}: `months` must be a whole number from 1 to {MAX_MONTHS}, not {months}",
        )
    return plan, int(months)


def grant(settings: Settings, order: Order, line: Line, email_opt_in: bool) -> LineOutcome:
    plan, months = plan_of(line)
    billing = order.billing_address
    answer = send_json(
        settings,
        f"{settings.service_url}/api/v1/subscriptions",
        line.idempotency_key,
        {
            "plan": plan,
            # A line of 3 units of a 12-month plan is 36 months.
            "months": months * line.quantity,
            "subscriber": {"username": order.user.username, "email": order.user.email},
            "order_number": order.number,
            "price": {"minor_units": line.unit_price.minor_units * line.quantity, "currency": line.unit_price.currency},
            "billing_country": billing.country if billing is not None else None,
            "shipping_method": order.shipping.method,
            "email_opt_in": email_opt_in,
        },
        f"grant plan {plan} for line {line.id}",
    )
    if answer is None or not isinstance(answer.get("id"), str) or not answer["id"]:
        raise LineFailure(FailureKind.SERVER, f"the subscription service granted line {line.id} but answered without its id")
    subscription = answer["id"]
    log.log(log.Level.INFO, f"order {order.number}: subscription {subscription} granted for line {line.id}")
    return LineOutcome(
        line_id=line.id,
        outcome=Outcome_Complete(
            Completion(
                attributes=[Attribute(name=SUBSCRIPTION_ID, value=subscription)],
                note=f"Subscription {subscription} ({plan}, {months * line.quantity} months) granted to {order.user.email}",
            )
        ),
    )


def failed(line: Line, failure: LineFailure) -> LineOutcome:
    return LineOutcome(line_id=line.id, outcome=Outcome_Failed(Failure(kind=failure.kind, message=failure.message)))


class WitWorld(wit_world.WitWorld):
    def describe(self) -> ModuleInfo:
        return ModuleInfo(name=MODULE, version=VERSION, product_types=[PRODUCT_TYPE])

    def supports_lines(self, order: Order, lines: List[Line]) -> List[bool]:
        return [line.product.product_type == PRODUCT_TYPE for line in lines]

    def fulfill_product(self, order: Order, lines: List[Line], email_opt_in: bool) -> List[LineOutcome]:
        try:
            settings = Settings()
        except LineFailure as failure:
            return [failed(line, failure) for line in lines]
        outcomes = []
        for line in lines:
            try:
                outcomes.append(grant(settings, order, line, email_opt_in))
            except LineFailure as failure:
                outcomes.append(failed(line, failure))
        return outcomes

    def revoke_line(self, order: Order, line: Line, revocation: Revocation) -> RevokeOutcome:
        subscription = attribute(line.stored_attributes, SUBSCRIPTION_ID)
        if subscription is None:
            return RevokeOutcome_Revoked(f"line {line.id} has no subscription to cancel")
        # The cause is a variant: a refund (by id) is the one 1.1 has.
        cause = revocation.cause
        if isinstance(cause, RevocationCause_Refund):
            reason = {"reason": "refund", "refund_id": cause.value}
        else:
            reason = {"reason": type(cause).__name__}
        try:
            settings = Settings()
            send_json(
                settings,
                f"{settings.service_url}/api/v1/subscriptions/{quote(subscription, safe='')}/cancel",
                revocation.idempotency_key,
                reason,
                f"cancel subscription {subscription}",
            )
        except LineFailure as failure:
            return RevokeOutcome_NotRevoked(failure.message)
        return RevokeOutcome_Revoked(f"Subscription {subscription} cancelled")

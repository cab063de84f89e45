// Fulfills "Gift Card" lines: issues one gift card per unit through an HTTP
// gift-card service, stores the card codes on the line, and cancels them
// when the line is refunded. Built into a WebAssembly component against
// wit/1.1 (commerce:fulfillment@1.1.0) with componentize-js:
// scripts/build-components. README.md beside this file gives the config and
// the service's contract.

import { get as configGet } from 'commerce:fulfillment/config@1.1.0';
import { send } from 'commerce:fulfillment/http@1.1.0';
import { log } from 'commerce:fulfillment/log@1.1.0';

const MODULE = 'gift-card';
const VERSION = '1.0.0';
const PRODUCT_TYPE = 'Gift Card';
/// The line attribute that keeps the codes of the line's cards, comma-separated.
const CODES = 'gift_card_codes';
/// Where the recipient's email may be given, in this order: a basket
/// attribute, then a product attribute; else the buyer's email.
const RECIPIENT_ATTRIBUTE = 'gift_card_recipient';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/// A line failure of `kind` ("configuration", "network", "timeout", "server").
class Failure extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

function attribute(attributes, name) {
  const found = attributes.find((attribute) => attribute.name === name);
  return found && found.value.trim() !== '' ? found.value : undefined;
}

/// The module's config: `service_url` (required), `timeout_ms` (optional).
function settings() {
  const serviceUrl = configGet('service_url');
  if (serviceUrl === undefined || serviceUrl.trim() === '') {
    throw new Failure('configuration', `module ${MODULE}: config key \`service_url\` is not set in settings.toml`);
  }
  const timeout = configGet('timeout_ms');
  let timeoutMs;
  if (timeout !== undefined) {
    timeoutMs = Number(timeout);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > 4294967295) {
      throw new Failure('configuration', `module ${MODULE}: config key \`timeout_ms\` is not a number of milliseconds: ${timeout}`);
    }
  }
  return { serviceUrl: serviceUrl.replace(/\/+$/, ''), timeoutMs };
}

/// Sends a JSON request through the host; the parsed answer, or a Failure
/// that says what failed.
function sendJson(config, method, url, idempotencyKey, body, what) {
  const headers = [
    { name: 'Idempotency-Key', value: idempotencyKey },
    { name: 'Accept', value: 'application/json' },
  ];
  if (body !== undefined) {
    headers.push({ name: 'Content-Type', value: 'application/json' });
  }
  let response;
  try {
    response = send({
      method,
      url,
      headers,
      body: body === undefined ? undefined : encoder.encode(JSON.stringify(body)),
      timeoutMs: config.timeoutMs,
    });
  } catch (error) {
    throw transportFailure(error.payload ?? { tag: 'other', val: String(error) }, what);
  }
  const text = decoder.decode(response.body);
  let json;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (response.status < 200 || response.status > 299) {
    const reason = json && typeof json.message === 'string' && json.message !== '' ? `: ${json.message}` : '';
    throw new Failure('server', `gift-card service answered ${response.status} to ${what}${reason}`);
  }
  return json;
}

/// The line failure for an `http.error`: a connection failure is a network
/// error, a time-out a timeout error, a refused or malformed request a
/// configuration error (the settings must change), anything else a server error.
function transportFailure(error, what) {
  switch (error.tag) {
    case 'connect-failed':
      return new Failure('network', `could not reach the gift-card service to ${what}: ${error.val}`);
    case 'timeout':
      return new Failure('timeout', `the gift-card service did not answer in time to ${what}`);
    case 'refused':
      return new Failure('configuration', `module ${MODULE}: the host refused the request to ${what}: ${error.val}`);
    case 'invalid-request':
      return new Failure('configuration', `module ${MODULE}: invalid request to ${what}: ${error.val}`);
    case 'response-too-large':
      return new Failure('server', `the gift-card service's answer to ${what} was larger than ${error.val} bytes`);
    default:
      return new Failure('server', `module ${MODULE}: ${what}: ${error.val}`);
  }
}

function failed(line, failure) {
  if (!(failure instanceof Failure)) {
    // A bug of this module, not of the line: say so rather than trap.
    failure = new Failure('server', `module ${MODULE}: ${failure}`);
  }
  return { lineId: line.id, outcome: { tag: 'failed', val: { kind: failure.kind, message: failure.message } } };
}

function recipient(order, line) {
  return attribute(order.basketAttributes, RECIPIENT_ATTRIBUTE)
    ?? attribute(line.product.attributes, RECIPIENT_ATTRIBUTE)
    ?? order.user.email;
}

/// Issues the line's cards, one per unit: unit N is sent with the
/// idempotency key "<line key>-<N>", so a retry gets the same cards back.
function issue(config, order, line) {
  const codes = [];
  for (let unit = 1; unit <= line.quantity; unit += 1) {
    const answer = sendJson(config, 'POST', `${config.serviceUrl}/api/v1/cards`, `${line.idempotencyKey}-${unit}`, {
      amount: {
        minor_units: Number(line.unitPrice.minorUnits),
        currency: line.unitPrice.currency,
      },
      recipient_email: recipient(order, line),
      purchaser_email: order.user.email,
      order_number: order.number,
      sku: line.product.sku,
      billing_country: order.billingAddress?.country ?? null,
      shipping_method: order.shipping.method,
    }, `issue card ${unit} of ${line.quantity} for line ${line.id}`);
    if (!answer || typeof answer.code !== 'string' || answer.code === '') {
      throw new Failure('server', `the gift-card service issued card ${unit} of line ${line.id} but answered without its code`);
    }
    codes.push(answer.code);
  }
  return codes;
}

export function describe() {
  return { name: MODULE, version: VERSION, productTypes: [PRODUCT_TYPE] };
}

export function supportsLines(order, lines) {
  return lines.map((line) => line.product.productType === PRODUCT_TYPE);
}

export function fulfillProduct(order, lines, emailOptIn) {
  let config;
  try {
    config = settings();
  } catch (failure) {
    return lines.map((line) => failed(line, failure));
  }
  return lines.map((line) => {
    if (line.unitPrice.minorUnits <= 0n) {
      return failed(line, new Failure('configuration', `product ${line.product.sku} has no price: a gift card needs an amount`));
    }
    try {
      const codes = issue(config, order, line);
      log('info', `order ${order.number}: issued ${codes.length} gift card(s) for line ${line.id}`);
      return {
        lineId: line.id,
        outcome: {
          tag: 'complete',
          val: {
            attributes: [{ name: CODES, value: codes.join(',') }],
            note: `Gift card(s) ${codes.join(', ')} sent to ${recipient(order, line)}`,
          },
        },
      };
    } catch (failure) {
      return failed(line, failure);
    }
  });
}

export function revokeLine(order, line, revocation) {
  const stored = attribute(line.storedAttributes, CODES);
  if (stored === undefined) {
    return { tag: 'revoked', val: `line ${line.id} has no gift cards to cancel` };
  }
  // The cause is a variant: a refund (by id) is the one 1.1 has.
  const reason = revocation.cause.tag === 'refund'
    ? { reason: 'refund', refund_id: Number(revocation.cause.val) }
    : { reason: revocation.cause.tag };
  try {
    const config = settings();
    const codes = stored.split(',');
    for (const code of codes) {
      sendJson(config, 'POST', `${config.serviceUrl}/api/v1/cards/${encodeURIComponent(code)}/cancel`,
        revocation.idempotencyKey, reason, `cancel card ${code}`);
    }
    return { tag: 'revoked', val: `Gift card(s) ${codes.join(', ')} cancelled` };
  } catch (failure) {
    return { tag: 'not-revoked', val: failure instanceof Failure ? failure.message : `module ${MODULE}: ${failure}` };
  }
}

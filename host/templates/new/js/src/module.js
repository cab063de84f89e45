// {{name}}: a fulfillment module (WIT `commerce:fulfillment@1.1.0`, in wit/)
// that fulfills the lines of product type {{product_type}} by calling one HTTP
// service.
//
// Config (settings.toml `[modules.config]`, or `run-module --config`):
// `service_url` (required), such as `https://service.example.com`; the
// operator also lists it in the module's `allowed_hosts`. For each line the
// module POSTs `{service_url}/fulfillments` with the line's idempotency key
// and stores the `reference` the service answers on the line; a refund POSTs
// `{service_url}/revocations`.
//
// Built by componentize-js (`npm run build`). The WIT's names are
// camelCase here (`product-type` is `productType`), u64 and s64 are BigInt,
// a variant is `{ tag, val }`, and an import's error is thrown: its value is
// the exception's `payload`.

import { get as configGet } from 'commerce:fulfillment/config@1.1.0';
import { send } from 'commerce:fulfillment/http@1.1.0';
import { log } from 'commerce:fulfillment/log@1.1.0';

const NAME = '{{name}}';
const VERSION = '0.1.0';
/** The product type this module fulfills, spelled as in the catalog. */
const PRODUCT_TYPE = {{product_type}};
/** The config key of the service's base URL. */
const SERVICE_URL = 'service_url';

export function describe() {
  return { name: NAME, version: VERSION, productTypes: [PRODUCT_TYPE] };
}

export function supportsLines(_order, lines) {
  return lines.map((line) => line.product.productType === PRODUCT_TYPE);
}

export function fulfillProduct(order, lines, emailOptIn) {
  const serviceUrl = configuredServiceUrl();
  if (serviceUrl.failure) {
    return lines.map((line) => failed(line, serviceUrl.failure));
  }
  log('info', `fulfilling ${lines.length} line(s) through ${serviceUrl.url}`);
  return lines.map((line) => fulfill(serviceUrl.url, order, line, emailOptIn));
}

export function revokeLine(order, line, revocation) {
  const serviceUrl = configuredServiceUrl();
  if (serviceUrl.failure) {
    return { tag: 'not-revoked', val: serviceUrl.failure.message };
  }
  const body = {
    order_number: order.number,
    line_id: Number(line.id),
    reference: stored(line, 'service_reference'),
  };
  if (revocation.cause.tag === 'refund') {
    body.refund_id = Number(revocation.cause.val);
  }
  const answer = post(`${serviceUrl.url}/revocations`, revocation.idempotencyKey, body);
  if (answer.error) {
    return { tag: 'not-revoked', val: transportFailure(serviceUrl.url, answer.error).message };
  }
  if (answer.response.status >= 200 && answer.response.status < 300) {
    return { tag: 'revoked', val: undefined };
  }
  return { tag: 'not-revoked', val: answered(answer.response) };
}

/** The service's base URL from the config (without a trailing `/`), or the failure. */
function configuredServiceUrl() {
  const url = (configGet(SERVICE_URL) ?? '').trim();
  if (!url) {
    return {
      failure: {
        kind: 'configuration',
        message: `config key \`${SERVICE_URL}\` is not set (settings.toml \`[modules.config]\`)`,
      },
    };
  }
  return { url: url.replace(/\/+$/, '') };
}

/** POST /fulfillments, with the line's idempotency key so that a retry does not fulfill it twice. */
function fulfill(serviceUrl, order, line, emailOptIn) {
  const body = {
    order_number: order.number,
    line_id: Number(line.id),
    sku: line.product.sku,
    quantity: line.quantity,
    username: order.user.username,
    email: order.user.email,
    email_opt_in: emailOptIn,
  };
  const answer = post(`${serviceUrl}/fulfillments`, line.idempotencyKey, body);
  if (answer.error) {
    return failed(line, transportFailure(serviceUrl, answer.error));
  }
  const { response } = answer;
  if (response.status < 200 || response.status >= 300) {
    return failed(line, { kind: 'server', message: answered(response) });
  }
  const attributes = [];
  let reference;
  try {
    reference = JSON.parse(new TextDecoder().decode(response.body)).reference;
  } catch {
    reference = undefined;
  }
  if (typeof reference === 'string') {
    attributes.push({ name: 'service_reference', value: reference });
  }
  return { lineId: line.id, outcome: { tag: 'complete', val: { attributes, note: undefined } } };
}

/** POSTs `body` as JSON through the host: `{ response }`, or `{ error }` (an http error variant). */
function post(url, idempotencyKey, body) {
  const request = {
    method: 'POST',
    url,
    headers: [
      { name: 'Content-Type', value: 'application/json' },
      { name: 'Idempotency-Key', value: idempotencyKey },
    ],
    body: new TextEncoder().encode(JSON.stringify(body)),
    timeoutMs: undefined,
  };
  try {
    return { response: send(request) };
  } catch (error) {
    if (error && error.payload && error.payload.tag) {
      return { error: error.payload };
    }
    throw error;
  }
}

/** The failure for a call that got no answer: the line's status tells staff what to look at. */
function transportFailure(serviceUrl, error) {
  switch (error.tag) {
    case 'connect-failed':
      return { kind: 'network', message: `cannot reach the service at ${serviceUrl}: ${error.val}` };
    case 'timeout':
      return { kind: 'timeout', message: `the service at ${serviceUrl} did not answer in time` };
    case 'refused':
      return {
        kind: 'configuration',
        message: `the host refused the call to ${serviceUrl} (is it in allowed_hosts?): ${error.val}`,
      };
    case 'invalid-request':
      return { kind: 'configuration', message: `cannot call ${serviceUrl} (check \`${SERVICE_URL}\`): ${error.val}` };
    case 'response-too-large':
      return { kind: 'server', message: `the service's answer is larger than ${error.val} bytes` };
    default:
      return { kind: 'server', message: `calling ${serviceUrl} failed: ${error.val}` };
  }
}

/** The status and the start of the body, for staff. */
function answered(response) {
  const excerpt = new TextDecoder().decode(response.body).trim().slice(0, 200);
  return `the service answered ${response.status}: ${excerpt}`;
}

function failed(line, failure) {
  return { lineId: line.id, outcome: { tag: 'failed', val: failure } };
}

/** An attribute stored on the line when it was fulfilled. */
function stored(line, name) {
  return line.storedAttributes.find((attribute) => attribute.name === name)?.value;
}

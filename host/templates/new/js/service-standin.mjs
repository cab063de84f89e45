// A stand-in for the service that the module calls, on a loopback port:
//
//     node service-standin.mjs [--port PORT]
//
// Prints its URL (http://127.0.0.1:PORT) on the first line of stdout once it
// listens (port 0, the default, takes any free port), then serves until it is
// stopped:
//
// - POST /fulfillments with an `Idempotency-Key` header and a JSON body:
//   200 {"reference": "REF-0001"}; the same key gets the same reference again,
//   as a real service must answer a retry. No key: 400.
// - POST /revocations with an `Idempotency-Key` header: 200 {"revoked": true}.
//
// Replace it with your real service's behaviour as you learn it (its error
// answers above all): the module's tests are only as good as this stand-in.
import { createServer } from 'node:http';

const portFlag = process.argv.indexOf('--port');
const port = portFlag === -1 ? 0 : Number(process.argv[portFlag + 1]);
const references = new Map();

function answer(response, status, document) {
  const data = JSON.stringify(document);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
  response.end(data);
}

const server = createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    const key = request.headers['idempotency-key'];
    console.error(`service stand-in: ${request.method} ${request.url}`);
    if (request.method !== 'POST' || !['/fulfillments', '/revocations'].includes(request.url)) {
      return answer(response, 404, { error: `no such endpoint: ${request.method} ${request.url}` });
    }
    if (!key) {
      return answer(response, 400, { error: 'the Idempotency-Key header is missing' });
    }
    try {
      JSON.parse(Buffer.concat(chunks).toString() || '{}');
    } catch {
      return answer(response, 400, { error: 'the body is not JSON' });
    }
    if (request.url === '/revocations') {
      return answer(response, 200, { revoked: true });
    }
    if (!references.has(key)) {
      references.set(key, `REF-${String(references.size + 1).padStart(4, '0')}`);
    }
    answer(response, 200, { reference: references.get(key) });
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`http://127.0.0.1:${server.address().port}`);
});

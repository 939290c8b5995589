/**
 * Errors Fastify and Node's HTTP parser raise before any route runs, in Pipit's error shape
 * (`{"error": "..."}`) with a message that says what was wrong, instead of the frameworks'
 * `{"error": "Bad Request", "message": ..., "statusCode": ...}` bodies (which also echoed the
 * whole offending path back).
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/** `frameworkErrors` of Fastify: FST_ERR_BAD_URL, FST_ERR_MAX_PARAM_LENGTH, FST_ERR_ASYNC_CONSTRAINT. */
export function frameworkError(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  let status = 400;
  let message: string;
  switch (err.code) {
    case 'FST_ERR_BAD_URL':
      message = 'Invalid URL: the path has a malformed percent-encoding (every % must start a valid UTF-8 escape like %20)';
      break;
    case 'FST_ERR_MAX_PARAM_LENGTH':
      status = 414;
      message = 'Invalid URL: a path segment is longer than 1000 characters';
      break;
    default:
      message = `Invalid request: ${err.message}`;
  }
  void reply.code(status).type('application/json').send({ error: message });
}

/** What the HTTP parser's error codes mean, for the 400 body. */
const PARSE_ERRORS: Record<string, string> = {
  HPE_INVALID_METHOD: 'the HTTP method is not valid',
  HPE_INVALID_URL: 'the request target is not a valid URL',
  HPE_INVALID_VERSION: 'the HTTP version is not valid',
  HPE_INVALID_HEADER_TOKEN: 'a header name or value has characters HTTP does not allow',
  HPE_INVALID_CONTENT_LENGTH: 'the Content-Length header is not a number',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'Content-Length and Transfer-Encoding were both sent',
  HPE_INVALID_TRANSFER_ENCODING: 'the Transfer-Encoding header is not valid',
  HPE_INVALID_CHUNK_SIZE: 'a chunk size of the chunked body is not valid',
  HPE_INVALID_CONSTANT: 'the request line is not valid HTTP',
  HPE_LF_EXPECTED: 'a line of the request does not end with CRLF',
  HPE_CR_EXPECTED: 'a line of the request does not end with CRLF',
};

/**
 * `clientErrorHandler`: the socket-level errors Node reports before a request exists (431 header
 * overflow, 408 timeouts, malformed HTTP). Answers once, in Pipit's shape, and closes the socket.
 */
export function onClientError(this: { log: { debug: (o: object, m: string) => void } }, err: NodeJS.ErrnoException & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let status: number;
  let message: string;
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    message = `Request header fields too large: the request line and headers together must fit in ${Math.round(http.maxHeaderSize / 1024)} KB (send long parameters such as q in a POST body)`;
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    message = 'Request timeout: the request was not received in time';
  } else {
    status = 400;
    message = `Malformed HTTP request: ${PARSE_ERRORS[err.code ?? ''] ?? `the request could not be parsed (${err.code ?? 'unknown error'})`}`;
  }
  this.log.debug({ code: err.code }, 'client error');
  const body = JSON.stringify({ error: message });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

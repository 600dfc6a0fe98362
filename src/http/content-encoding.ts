// Request bodies compressed with gzip or deflate (Content-Encoding), as Triton's HTTP client sends
// an inference request with request_compression_algorithm: inflated before parsing, with BODY_LIMIT
// holding the inflated bytes (a small zip bomb is a 413). Any other encoding is 415, as RFC 9110
// has it (it was parsed as it came: 400 'not valid JSON' or 'not an image'). A multipart form is
// read from the socket by @fastify/multipart, past this hook, so a compressed one is 415 too.
import type { Readable } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import type { FastifyRequest } from 'fastify';
import { UnsupportedEncodingError } from './errors.js';

type Counted = Readable & { receivedEncodedLength?: number };

export async function inflateBody(request: FastifyRequest, _reply: unknown, payload: Readable): Promise<Readable> {
  const encoding = String(request.headers['content-encoding'] ?? '').trim().toLowerCase();
  const hasBody = request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;
  if (!encoding || encoding === 'identity' || !hasBody) return payload;
  const inflate = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : undefined;
  if (!inflate) throw new UnsupportedEncodingError(`Content-Encoding ${encoding} is not supported: send the body as it is, or with gzip or deflate`);
  if (/^multipart\//i.test(request.headers['content-type'] ?? '')) {
    throw new UnsupportedEncodingError('a multipart form cannot be compressed (Content-Encoding): send it as it is');
  }
  // Fastify checks Content-Length against the bytes that came over the wire, not the inflated ones
  const out: Counted = inflate;
  out.receivedEncodedLength = 0;
  payload.on('data', (chunk: Buffer) => { out.receivedEncodedLength! += chunk.length; });
  payload.on('error', (err) => inflate.destroy(err));
  inflate.on('error', (err: Error & { statusCode?: number }) => {
    if (err.statusCode === undefined) {
      err.message = `the body is not valid ${encoding} data: ${err.message}`;
      err.statusCode = 400;
    }
  });
  return payload.pipe(inflate);
}

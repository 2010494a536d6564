// "Copy as curl" from captured exchanges: quoting, HTTP/2 pseudo-headers, bodies; and the commands
// really run (sh, then curl against a real server on loopback).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ExchangeDetailJson } from '../../core/src/inspector/protocol.js';
import { curlCommand, shellQuote } from '../src/detail/curl-command.js';

function exchange(patch: Partial<ExchangeDetailJson>): ExchangeDetailJson {
  return {
    protocol: 'HTTP/1.1', method: 'GET', url: 'http://site.test/', requestHeaders: [['Host', 'site.test']], requestBody: null,
    ...patch,
  } as ExchangeDetailJson;
}

const utf8 = (data: string) => ({ size: Buffer.byteLength(data), storedSize: Buffer.byteLength(data), truncated: false, encoding: 'utf8' as const, data });

describe('copy as curl', { timeout: 10_000 }, () => {
  test('single quotes survive the shell', () => {
    assert.equal(shellQuote(`it's "x" $HOME \\n`), `'it'\\''s "x" $HOME \\n'`);
  });

  test('a GET: headers in order and case, computed ones left to curl, --compressed for codings curl can undo', () => {
    const { command, bodyLeftOut } = curlCommand(exchange({
      url: 'http://site.test:8080/a?b=1&c=2',
      requestHeaders: [['Host', 'site.test:8080'], ['User-Agent', 'x'], ['Accept-Encoding', 'gzip, br'], ['X-Dup', '1'], ['X-Dup', '2'], ['Connection', 'keep-alive']],
    }));
    assert.equal(command, `curl 'http://site.test:8080/a?b=1&c=2' -H 'User-Agent: x' -H 'Accept-Encoding: gzip, br' -H 'X-Dup: 1' -H 'X-Dup: 2' --compressed`);
    assert.equal(bodyLeftOut, false);
  });

  test('HTTP/2: pseudo-headers become the URL and method, --http2; a PUT with a text body', () => {
    const { command } = curlCommand(exchange({
      protocol: 'h2', method: 'PUT', url: 'https://h2.test/items/7',
      requestHeaders: [[':method', 'PUT'], [':scheme', 'https'], [':authority', 'h2.test'], [':path', '/items/7'], ['content-type', 'application/json']],
      requestBody: utf8(`{"name":"O'Brien"}`),
    }));
    assert.equal(command, `curl --http2 -X 'PUT' 'https://h2.test/items/7' -H 'content-type: application/json' --data-binary '{"name":"O'\\''Brien"}'`);
  });

  test('brackets in the URL are not curl globs', () => {
    assert.equal(curlCommand(exchange({ url: 'http://site.test/?a[]=1&b={x}' })).command, `curl --globoff 'http://site.test/?a[]=1&b={x}'`);
  });

  test('a binary or truncated body is not typed in: the command says so', () => {
    const binary = curlCommand(exchange({ method: 'POST', requestBody: { size: 4, storedSize: 4, truncated: false, encoding: 'base64', data: 'AP+A/w==' } }));
    assert.equal(binary.bodyLeftOut, true);
    assert.match(binary.command, /^curl -X 'POST' 'http:\/\/site\.test\/' {2}# the binary request body \(4 bytes\) is not included$/);
    const cut = curlCommand(exchange({ method: 'POST', requestBody: { ...utf8('abc'), size: 99, truncated: true } }));
    assert.match(cut.command, /# the truncated request body \(99 bytes\) is not included$/);
  });

  test('the command runs: sh parses it and the server gets the same request', async () => {
    let got: { method?: string; url?: string; headers: string[]; body: string } | null = null;
    const server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
        got = { method: req.method, url: req.url, headers: req.rawHeaders, body };
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/login?next=/a&b='c'&list[]=1`;
      const body = `{"user":"ada","note":"it's $HOME \`id\` \\"q\\""}`;
      const { command } = curlCommand(exchange({
        method: 'POST', url,
        requestHeaders: [['Host', 'ignored'], ['Content-Type', 'application/json'], ['X-Quote', `a'b"c $d`]],
        requestBody: utf8(body),
      }));
      const out = await new Promise<string>((resolve, reject) =>
        execFile('sh', ['-c', `${command} --silent --show-error`], { timeout: 5_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
      assert.equal(out, 'ok');
      assert.equal(got!.method, 'POST');
      assert.equal(got!.url, "/login?next=/a&b='c'&list[]=1");
      assert.equal(got!.body, body, 'the body byte for byte');
      const headers = got!.headers;
      assert.equal(headers[headers.indexOf('X-Quote') + 1], `a'b"c $d`);
      assert.equal(headers[headers.indexOf('Content-Type') + 1], 'application/json');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

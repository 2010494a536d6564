// The "Edit and resend" form: a captured request becomes editable text, and the text becomes the
// edits the API takes (headers in order, duplicates kept; a line that is not a header is named).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExchangeDetailJson } from '../../core/src/inspector/protocol.js';
import { editsOf, formOf } from '../src/detail/resend-form.js';

function exchange(overrides: Partial<ExchangeDetailJson>): ExchangeDetailJson {
  return {
    method: 'POST',
    url: 'https://api.test/items?x=1',
    requestHeaders: [['Host', 'api.test'], ['Content-Type', 'application/json'], ['X-Dup', '1'], ['X-Dup', '2']],
    requestBody: { size: 9, storedSize: 9, truncated: false, encoding: 'utf8', data: '{"a":"é"}' },
    ...overrides,
  } as ExchangeDetailJson;
}

describe('the edit-and-resend form', { timeout: 10_000 }, () => {
  test('a captured request as fields: headers one per line, the text body', () => {
    assert.deepEqual(formOf(exchange({})), {
      method: 'POST',
      url: 'https://api.test/items?x=1',
      headers: 'Host: api.test\nContent-Type: application/json\nX-Dup: 1\nX-Dup: 2',
      body: '{"a":"é"}',
    });
  });

  test('HTTP/2 pseudo-headers stay out (the method and URL make them); a binary or cut body cannot be edited', () => {
    const h2 = formOf(exchange({ requestHeaders: [[':method', 'GET'], [':path', '/'], ['accept', '*/*']], requestBody: null }));
    assert.equal(h2.headers, 'accept: */*');
    assert.equal(h2.body, '');
    assert.equal(formOf(exchange({ requestBody: { size: 3, storedSize: 3, truncated: false, encoding: 'base64', data: 'AP8A' } })).body, null);
    assert.equal(formOf(exchange({ requestBody: { size: 30, storedSize: 9, truncated: true, encoding: 'utf8', data: '{"a":"é"}' } })).body, null);
  });

  test('fields back to edits: order and duplicates kept, blank lines skipped, a colon in a value kept', () => {
    const form = { method: ' PUT ', url: 'https://api.test/x', headers: 'X-Dup: 1\n\nX-Dup: 2\nX-Time: 12:30', body: 'new' };
    assert.deepEqual(editsOf(form), {
      edits: { method: 'PUT', url: 'https://api.test/x', headers: [['X-Dup', '1'], ['X-Dup', '2'], ['X-Time', '12:30']], body: 'new' },
    });
    assert.deepEqual(editsOf({ ...form, body: null }), {
      edits: { method: 'PUT', url: 'https://api.test/x', headers: [['X-Dup', '1'], ['X-Dup', '2'], ['X-Time', '12:30']] },
    });
    assert.deepEqual(editsOf({ ...form, headers: 'X-Ok: 1\nno colon here' }), { error: 'Header line 2 is not "Name: value": no colon here' });
  });
});

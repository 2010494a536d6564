import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { scrollToReveal, visibleWindow } from '../src/list/virtual-window.js';

describe('virtual window', { timeout: 10_000 }, () => {
  test('renders only the visible rows plus overscan, with padding for the rest', () => {
    const w = visibleWindow({ itemCount: 100_000, rowHeight: 24, scrollTop: 24 * 50_000, height: 480, overscan: 5 });
    assert.deepEqual(w, { start: 49_995, end: 50_025, padTop: 49_995 * 24, padBottom: (100_000 - 50_025) * 24 });
    assert.equal(w.padTop + (w.end - w.start) * 24 + w.padBottom, 100_000 * 24, 'the total height is preserved');
  });

  test('clamps at both ends and handles empty lists and odd sizes', () => {
    assert.deepEqual(visibleWindow({ itemCount: 0, rowHeight: 24, scrollTop: 100, height: 480 }), { start: 0, end: 0, padTop: 0, padBottom: 0 });
    const top = visibleWindow({ itemCount: 10, rowHeight: 24, scrollTop: -50, height: 480, overscan: 3 });
    assert.deepEqual([top.start, top.end], [0, 10]);
    const past = visibleWindow({ itemCount: 1000, rowHeight: 24, scrollTop: 10 ** 9, height: 480, overscan: 0 });
    assert.deepEqual([past.start, past.end], [980, 1000], 'scrolled past the end shows the last page');
    const partial = visibleWindow({ itemCount: 1000, rowHeight: 24, scrollTop: 30, height: 50, overscan: 0 });
    assert.deepEqual([partial.start, partial.end], [1, 4], 'partly visible rows at both edges are rendered');
  });

  test('every scroll position of a long list renders a window that covers the viewport', () => {
    for (let scrollTop = 0; scrollTop < 24 * 2000; scrollTop += 7) {
      const w = visibleWindow({ itemCount: 2000, rowHeight: 24, scrollTop, height: 333, overscan: 2 });
      assert.ok(w.start * 24 <= scrollTop && w.end * 24 >= Math.min(scrollTop + 333, 2000 * 24), `at ${scrollTop}`);
      assert.ok(w.end - w.start <= Math.ceil(333 / 24) + 1 + 4);
    }
  });

  test('scrollToReveal moves only as far as needed', () => {
    assert.equal(scrollToReveal(10, 24, 0, 480), null);
    assert.equal(scrollToReveal(25, 24, 0, 480), 26 * 24 - 480);
    assert.equal(scrollToReveal(3, 24, 240, 480), 72);
  });
});

import assert from 'node:assert/strict';
import { ANONYMOUS_ESCAPED_PREFIX, ANONYMOUS_PREFIX, escapeName, isAnonymousEscapedName, isAnonymousName, isEscapedName, normalizeUsername } from '../../server/names.js';
import { InvalidUsername } from '../../server/errors.js';

describe('usernames', () => {
  it('are normalised the same way for every sign-in: trimmed, lower case, NFKC', () => {
    assert.equal(normalizeUsername('  Alice '), 'alice');
    assert.equal(normalizeUsername('ＡＬＩＣＥ'), 'alice'); // full-width letters
    assert.equal(normalizeUsername('José'), normalizeUsername('Jose\u0301'));
  });

  it('refuse empty, overlong, slashed and control-character names with a clear reason', () => {
    for (const bad of ['', '   ', 'a/b', 'a\\b', 'x'.repeat(65), 'a\u0000b', 'a\u200bb', '..']) {
      assert.throws(() => normalizeUsername(bad), InvalidUsername, JSON.stringify(bad));
    }
  });

  it('escape into DNS-safe names that never collide', () => {
    const names = ['a.b', 'a-b', 'a_b', 'ab', 'a-2eb', 'a--2eb', 'ä', 'a\u0308', 'jürgen', '用户', 'x@uni.edu', 'x-40uni-2eedu', '-', '--'];
    const escaped = names.map((n) => escapeName(n));
    assert.equal(new Set(escaped).size, names.length, escaped.join(' '));
    for (const e of escaped) assert.ok(isEscapedName(e), e);
    assert.equal(escapeName('jdoe'), 'jdoe');
    assert.equal(escapeName('a.b'), 'a-2eb');
  });

  it('keep long names distinct and within a DNS label', () => {
    const a = escapeName('ü'.repeat(40) + 'a');
    const b = escapeName('ü'.repeat(40) + 'b');
    assert.notEqual(a, b);
    assert.ok(a.length <= 50 && isEscapedName(a));
    // a shortened form can never equal a plain one: plain forms are at most 48 characters
    assert.equal(a.length, 50);
  });

  it("can't take an anonymous visitor's name: the ~ prefix is refused for every sign-in", () => {
    // '～' (full-width tilde) becomes '~' under NFKC, so it is refused too.
    for (const bad of ['~abc', '  ~abc', '～abc', '~']) assert.throws(() => normalizeUsername(bad), InvalidUsername, JSON.stringify(bad));
    assert.equal(normalizeUsername('a~b'), 'a~b');
    assert.ok(isAnonymousName(`${ANONYMOUS_PREFIX}x`));
    assert.ok(!isAnonymousName('x~'));
  });

  it('tell anonymous servers apart by their escaped name alone, which no other name can produce', () => {
    assert.equal(escapeName(ANONYMOUS_PREFIX), ANONYMOUS_ESCAPED_PREFIX);
    assert.ok(isAnonymousEscapedName(escapeName('~k3x7')));
    // Names that look similar escape differently: '-' itself becomes '-2d'.
    for (const name of ['-7eabc', '7eabc', 'x~abc', 'a-7e']) assert.ok(!isAnonymousEscapedName(escapeName(name)), name);
  });
});

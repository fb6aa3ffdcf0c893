import assert from 'node:assert/strict';
import { SealBroken, SecretBox } from '../../server/auth/secret-box.js';

describe('SecretBox: TOTP secrets sealed with AES-256-GCM under the hub secret', () => {
  const box = new SecretBox('hub-secret-one', 'totp');

  it('seals into the versioned format without the plain text, fresh each time, and opens again', () => {
    const a = box.seal('JBSWY3DPEHPK3PXP', 'account-totp:ann');
    const b = box.seal('JBSWY3DPEHPK3PXP', 'account-totp:ann');
    assert.match(a, /^v1:[A-Za-z0-9_-]+$/);
    assert.notEqual(a, b, 'a new IV every time');
    assert.ok(!a.includes('JBSWY3DPEHPK3PXP'));
    assert.equal(box.open(a, 'account-totp:ann'), 'JBSWY3DPEHPK3PXP');
    assert.equal(SecretBox.isSealed(a), true);
    assert.equal(SecretBox.isSealed('JBSWY3DPEHPK3PXP'), false);
  });

  it('refuses another account\'s value, another hub secret or purpose, changed bytes and unknown versions', () => {
    const sealed = box.seal('JBSWY3DPEHPK3PXP', 'account-totp:ann');
    assert.throws(() => box.open(sealed, 'account-totp:bob'), SealBroken);
    assert.throws(() => new SecretBox('hub-secret-two', 'totp').open(sealed, 'account-totp:ann'), SealBroken);
    assert.throws(() => new SecretBox('hub-secret-one', 'other').open(sealed, 'account-totp:ann'), SealBroken);
    const raw = Buffer.from(sealed.slice(3), 'base64url');
    raw[raw.length - 1] ^= 1;
    assert.throws(() => box.open(`v1:${raw.toString('base64url')}`, 'account-totp:ann'), SealBroken);
    assert.throws(() => box.open(`v2:${sealed.slice(3)}`, 'account-totp:ann'), SealBroken);
    assert.throws(() => box.open('v1:abc', 'account-totp:ann'), SealBroken);
  });
});

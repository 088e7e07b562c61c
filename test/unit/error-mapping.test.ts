// One error type, mapped once: refused input (a bad setting, option, name
// or size) is exit code 2 for the dmthin command, any other failure 1, and
// the message a user reads is the error's own.
import assert from 'node:assert/strict';
import { EXIT, exitCodeFor } from '../../src/cli/exit';
import { DmthinError, errorText, isBadInput } from '../../src/shared/errors';

describe('error mapping', () => {
  it('maps refused input to bad usage and failures to a problem', () => {
    assert.equal(exitCodeFor(new DmthinError('ECONFIG', 'DMTHIN_LOG_LEVEL "loud" is not one of error, warn, info, debug')), EXIT.USAGE);
    assert.equal(exitCodeFor(new DmthinError('ESIZE', 'size of vol must be a whole number of 512-byte sectors')), EXIT.USAGE);
    assert.equal(exitCodeFor(new DmthinError('EBUSY', 'device x is mounted')), EXIT.PROBLEM);
    assert.equal(exitCodeFor(Object.assign(new Error('EBUSY: device or resource busy'), { code: 'EBUSY', errno: -16 })), EXIT.PROBLEM);
    assert.equal(exitCodeFor('a string thrown'), EXIT.PROBLEM);
    assert.ok(isBadInput(new DmthinError('EVOLOPTION', 'bad')));
    assert.ok(!isBadInput(Object.assign(new Error('x'), { code: 'EINVAL' })), 'a system EINVAL is a failure, not refused input');
  });

  it('keeps the code, the object it is about and the cause', () => {
    const cause = new Error('underneath');
    const err = new DmthinError('ESIZE', 'size of layer abc is not a multiple of 512', { cause, subject: 'abc' });
    assert.equal(err.code, 'ESIZE');
    assert.equal(err.subject, 'abc');
    assert.equal(err.cause, cause);
    assert.equal(errorText(err), 'size of layer abc is not a multiple of 512');
    assert.equal(errorText(42), '42');
  });
});

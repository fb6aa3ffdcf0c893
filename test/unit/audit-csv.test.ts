import assert from 'node:assert/strict';
import { csvCell, toCsv } from '../../server/audit/index.js';
import { redactLogLines } from '../../server/spawner/index.js';

describe('audit CSV export', () => {
  it('quotes what must be quoted, as RFC 4180 says', () => {
    assert.equal(csvCell('plain'), 'plain');
    assert.equal(csvCell('a,b'), '"a,b"');
    assert.equal(csvCell('say "hi"'), '"say ""hi"""');
    assert.equal(csvCell('two\nlines'), '"two\nlines"');
    assert.equal(toCsv(['a', 'b'], [['1', '2']]), 'a,b\r\n1,2\r\n');
  });

  it('defuses cells a spreadsheet would run as formulas', () => {
    for (const hostile of ['=1+1', '+SUM(A1)', '-2+3', '@cmd', '\tx', '\rx', '=HYPERLINK("http://evil","click")']) {
      const cell = csvCell(hostile);
      assert.ok(cell.startsWith(`"'`), `${JSON.stringify(hostile)} became ${cell}`);
    }
    // Harmless look-alikes stay as they are.
    assert.equal(csvCell('a=b'), 'a=b');
    assert.equal(csvCell('2026-12-01T10:00:00.000Z'), '2026-12-01T10:00:00.000Z');
  });
});

describe('log lines shown to admins', () => {
  it('keep only the last lines asked for, without terminal escapes or tokens', () => {
    const text = ['one', '\x1b[31mred\x1b[0m', 'GET /user/x/lab?token=abcdef0123456789 200', 'Authorization: token abcdef0123456789', 'secret s3cr3t-value here', ''].join('\n');
    assert.deepEqual(redactLogLines(text, 4, ['s3cr3t-value']), ['red', 'GET /user/x/lab?token=[secret] 200', 'Authorization: token [secret]', 'secret [secret] here']);
    assert.deepEqual(redactLogLines(text, 0), []);
    assert.equal(redactLogLines('x'.repeat(5000), 1)[0]!.length, 2001);
    assert.equal(redactLogLines(Array.from({ length: 2000 }, (_, i) => `l${i}`).join('\n'), 100000).length, 500);
  });
});

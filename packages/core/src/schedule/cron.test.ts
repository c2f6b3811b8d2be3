import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { type CronSchedule, parseCron } from './cron.js';

const utc = (text: string) => new Date(`${text}Z`);

/** The next `count` times after `after`, as ISO strings without milliseconds. */
function upcoming(expression: string, after: string, count: number): string[] {
  const schedule = parseCron(expression);
  const times: string[] = [];
  let at: Date | undefined = utc(after);
  for (let i = 0; i < count; i++) {
    at = schedule.next(at);
    if (!at) break;
    times.push(at.toISOString().replace('.000Z', ''));
  }
  return times;
}

function refusal(expression: string): string {
  try {
    parseCron(expression);
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return (error as Error).message;
  }
  throw new Error(`'${expression}' was accepted`);
}

describe('parseCron: next times', () => {
  it.each([
    // [expression, after, expected next times]
    [
      '0 0 0 * * *',
      '2024-02-27T12:00:00',
      ['2024-02-28T00:00:00', '2024-02-29T00:00:00', '2024-03-01T00:00:00'],
    ],
    ['* * * * * *', '2024-01-01T00:00:00.999', ['2024-01-01T00:00:01', '2024-01-01T00:00:02']],
    [
      '*/15 * * * * *',
      '2024-01-01T12:00:07',
      ['2024-01-01T12:00:15', '2024-01-01T12:00:30', '2024-01-01T12:00:45', '2024-01-01T12:01:00'],
    ],
    ['0 */20 * * * *', '2024-01-01T10:59:59', ['2024-01-01T11:00:00', '2024-01-01T11:20:00']],
    [
      '10-12 * * * * *',
      '2024-01-01T00:00:12',
      ['2024-01-01T00:01:10', '2024-01-01T00:01:11', '2024-01-01T00:01:12'],
    ],
    [
      '5/20 * * * * *',
      '2024-01-01T00:00:00',
      ['2024-01-01T00:00:05', '2024-01-01T00:00:25', '2024-01-01T00:00:45', '2024-01-01T00:01:05'],
    ],
    ['*,30 0 0 1 1 *', '2024-01-01T00:00:58', ['2024-01-01T00:00:59', '2025-01-01T00:00:00']],
    ['0 0 12 * * *', '2024-01-01T12:00:00', ['2024-01-02T12:00:00']],
    ['0 0 12 * * *', '2024-01-01T11:59:59.999', ['2024-01-01T12:00:00']],
    // the crate's own tests (tests/lib.rs)
    [
      '0 5,13,40-42 17 1 Jan *',
      '2017-06-15T00:00:00',
      [
        '2018-01-01T17:05:00',
        '2018-01-01T17:13:00',
        '2018-01-01T17:40:00',
        '2018-01-01T17:41:00',
        '2018-01-01T17:42:00',
        '2019-01-01T17:05:00',
      ],
    ],
    [
      '0/20 0/5 0 1 1 * *',
      '2017-06-15T14:29:36',
      [
        '2018-01-01T00:00:00',
        '2018-01-01T00:00:20',
        '2018-01-01T00:00:40',
        '2018-01-01T00:05:00',
        '2018-01-01T00:05:20',
      ],
    ],
    [
      '*/17 * * * * ?',
      '2020-01-01T00:00:00',
      [
        '2020-01-01T00:00:17',
        '2020-01-01T00:00:34',
        '2020-01-01T00:00:51',
        '2020-01-01T00:01:00',
        '2020-01-01T00:01:17',
      ],
    ],
    [
      '0 0 0 1 1-4/2 ?',
      '2020-01-01T00:00:00',
      ['2020-03-01T00:00:00', '2021-01-01T00:00:00', '2021-03-01T00:00:00', '2022-01-01T00:00:00'],
    ],
    [
      '0 0 10-12/2 * * ?',
      '2020-01-01T00:00:00',
      ['2020-01-01T10:00:00', '2020-01-01T12:00:00', '2020-01-02T10:00:00'],
    ],
    [
      '0 0 0 1-31/10 * ?',
      '2020-01-01T00:00:00',
      [
        '2020-01-11T00:00:00',
        '2020-01-21T00:00:00',
        '2020-01-31T00:00:00',
        '2020-02-01T00:00:00',
        '2020-02-11T00:00:00',
        '2020-02-21T00:00:00',
        '2020-03-01T00:00:00',
      ],
    ],
    ['0 0 0 1 January-June/1 *', '2020-01-01T00:00:00', ['2020-02-01T00:00:00', '2020-03-01T00:00:00']],
    ['@yearly', '2017-06-15T14:29:36', ['2018-01-01T00:00:00', '2019-01-01T00:00:00', '2020-01-01T00:00:00']],
    [
      '@monthly',
      '2017-10-15T14:29:36',
      ['2017-11-01T00:00:00', '2017-12-01T00:00:00', '2018-01-01T00:00:00'],
    ],
    ['@weekly', '2016-12-23T14:29:36', ['2016-12-25T00:00:00', '2017-01-01T00:00:00', '2017-01-08T00:00:00']],
    ['@daily', '2016-12-29T14:29:36', ['2016-12-30T00:00:00', '2016-12-31T00:00:00', '2017-01-01T00:00:00']],
    ['@hourly', '2017-02-25T22:29:36', ['2017-02-25T23:00:00', '2017-02-26T00:00:00', '2017-02-26T01:00:00']],
  ])('%s after %s', (expression, after, expected) => {
    expect(upcoming(expression, after, expected.length)).toEqual(expected);
  });

  it("matches the crate's README output (both day fields must match)", () => {
    // README: "0 30 9,12,15 1,15 May-Aug Mon,Wed,Fri 2018/2"; in 2018 only June 1 and 15 (Fridays) and
    // August 1 and 15 (Wednesdays) are both a 1st/15th and a Mon/Wed/Fri
    expect(
      upcoming('0   30   9,12,15     1,15       May-Aug  Mon,Wed,Fri  2018/2', '2018-01-01T00:00:00', 11),
    ).toEqual([
      '2018-06-01T09:30:00',
      '2018-06-01T12:30:00',
      '2018-06-01T15:30:00',
      '2018-06-15T09:30:00',
      '2018-06-15T12:30:00',
      '2018-06-15T15:30:00',
      '2018-08-01T09:30:00',
      '2018-08-01T12:30:00',
      '2018-08-01T15:30:00',
      '2018-08-15T09:30:00',
      '2018-08-15T12:30:00',
    ]);
    // then 2020, the next year of 2018/2: May 1 2020 is a Friday
    expect(upcoming('0 30 9 1,15 May-Aug Mon,Wed,Fri 2018/2', '2018-08-15T09:30:00', 1)).toEqual([
      '2020-05-01T09:30:00',
    ]);
  });

  it('ANDs day-of-month and day-of-week, unlike Vixie cron', () => {
    // Friday the 13th, not every 13th and every Friday
    expect(upcoming('0 0 0 13 * Fri', '2024-02-27T00:00:00', 3)).toEqual([
      '2024-09-13T00:00:00',
      '2024-12-13T00:00:00',
      '2025-06-13T00:00:00',
    ]);
  });

  describe('day of week: Sunday = 1', () => {
    // 2024-02-27 is a Tuesday
    it.each([
      ['1', '2024-03-03'],
      ['Sun', '2024-03-03'],
      ['sunday', '2024-03-03'],
      ['SUNDAY', '2024-03-03'],
      ['2', '2024-03-04'],
      ['Mon', '2024-03-04'],
      ['3', '2024-03-05'],
      ['tues', '2024-03-05'],
      ['4', '2024-02-28'],
      ['Wednesday', '2024-02-28'],
      ['5', '2024-02-29'],
      ['THURS', '2024-02-29'],
      ['thu', '2024-02-29'],
      ['6', '2024-03-01'],
      ['fri', '2024-03-01'],
      ['7', '2024-03-02'],
      ['Saturday', '2024-03-02'],
    ])('%s', (day, expected) => {
      expect(upcoming(`0 0 0 * * ${day}`, '2024-02-27T00:00:00', 1)).toEqual([`${expected}T00:00:00`]);
    });

    it('steps and ranges count from Sunday = 1', () => {
      // */2 = 1,3,5,7: Sun, Tue, Thu, Sat
      expect(upcoming('0 0 0 * * */2', '2024-02-27T00:00:00', 4)).toEqual([
        '2024-02-29T00:00:00',
        '2024-03-02T00:00:00',
        '2024-03-03T00:00:00',
        '2024-03-05T00:00:00',
      ]);
      // Mon-Fri/2 = Mon, Wed, Fri; 2/3 = 2,5: Mon, Thu
      expect(upcoming('0 0 0 * * Mon-Fri/2', '2024-02-27T00:00:00', 3)).toEqual([
        '2024-02-28T00:00:00',
        '2024-03-01T00:00:00',
        '2024-03-04T00:00:00',
      ]);
      expect(upcoming('0 0 0 * * 2/3', '2024-02-27T00:00:00', 2)).toEqual([
        '2024-02-29T00:00:00',
        '2024-03-04T00:00:00',
      ]);
      expect(upcoming('0 30 9 * * Mon-Fri', '2024-02-29T10:00:00', 2)).toEqual([
        '2024-03-01T09:30:00',
        '2024-03-04T09:30:00',
      ]);
    });
  });

  it('reads month names and numbers alike, in any case', () => {
    const expected = ['2024-07-01T00:00:00', '2025-01-01T00:00:00'];
    expect(upcoming('0 0 0 1 JAN,jul *', '2024-02-27T00:00:00', 2)).toEqual(expected);
    expect(upcoming('0 0 0 1 January,July *', '2024-02-27T00:00:00', 2)).toEqual(expected);
    expect(upcoming('0 0 0 1 1,7 *', '2024-02-27T00:00:00', 2)).toEqual(expected);
    expect(upcoming('0 0 0 1 sep-Nov *', '2024-02-27T00:00:00', 3)).toEqual([
      '2024-09-01T00:00:00',
      '2024-10-01T00:00:00',
      '2024-11-01T00:00:00',
    ]);
  });

  it('knows leap years', () => {
    expect(upcoming('0 0 0 29 2 *', '2024-03-01T00:00:00', 2)).toEqual([
      '2028-02-29T00:00:00',
      '2032-02-29T00:00:00',
    ]);
    expect(upcoming('0 0 0 29 Feb * 2000', '1999-01-01T00:00:00', 1)).toEqual(['2000-02-29T00:00:00']);
    // 2100 is no leap year, and the crate's years end with it
    expect(upcoming('0 0 0 29 2 *', '2096-03-01T00:00:00', 1)).toEqual([]);
    expect(upcoming('0 0 0 28 2 *', '2100-02-27T00:00:00', 1)).toEqual(['2100-02-28T00:00:00']);
  });

  it('skips months without the day', () => {
    expect(upcoming('0 0 0 31 * *', '2024-01-31T00:00:00', 6)).toEqual([
      '2024-03-31T00:00:00',
      '2024-05-31T00:00:00',
      '2024-07-31T00:00:00',
      '2024-08-31T00:00:00',
      '2024-10-31T00:00:00',
      '2024-12-31T00:00:00',
    ]);
    expect(upcoming('0 0 0 30 * *', '2023-01-30T00:00:00', 2)).toEqual([
      '2023-03-30T00:00:00',
      '2023-04-30T00:00:00',
    ]);
    expect(upcoming('0 0 0 30 2 *', '2024-01-01T00:00:00', 1)).toEqual([]);
  });

  it('rolls over minutes, hours, days, months and years', () => {
    expect(upcoming('59 59 23 31 12 *', '2024-12-31T23:59:58', 2)).toEqual([
      '2024-12-31T23:59:59',
      '2025-12-31T23:59:59',
    ]);
    expect(upcoming('0 0 0 * * *', '2024-12-31T23:59:59.500', 1)).toEqual(['2025-01-01T00:00:00']);
    expect(upcoming('30 * * * * *', '2024-02-29T23:59:30', 1)).toEqual(['2024-03-01T00:00:30']);
  });

  it('honours the year field and ends with it', () => {
    expect(upcoming('0 0 0 1 1 * 2030', '2024-05-05T00:00:00', 2)).toEqual(['2030-01-01T00:00:00']);
    expect(upcoming('0 0 12 * * * 2025-2026', '2024-06-01T00:00:00', 1)).toEqual(['2025-01-01T12:00:00']);
    expect(upcoming('0 0 12 * * * 2025-2026', '2026-12-31T12:00:00', 1)).toEqual([]);
    expect(upcoming('0 0 0 1 1 * 2025,2027/10', '2025-06-01T00:00:00', 3)).toEqual([
      '2027-01-01T00:00:00',
      '2037-01-01T00:00:00',
      '2047-01-01T00:00:00',
    ]);
    expect(upcoming('0 0 0 * * *', '2100-12-30T12:00:00', 2)).toEqual(['2100-12-31T00:00:00']);
  });

  it('reads UTC only, whatever the date object', () => {
    const schedule = parseCron('0 0 3 * * *');
    expect(schedule.next(new Date(Date.UTC(2024, 5, 1, 2, 59, 59)))).toEqual(utc('2024-06-01T03:00:00'));
    expect(schedule.includes(utc('2024-06-01T03:00:00'))).toBe(true);
    expect(schedule.includes(utc('2024-06-01T03:00:01'))).toBe(false);
  });

  it('keeps the source', () => {
    const schedule = parseCron(' 0 0 0 * * * ');
    expect(schedule.source).toBe(' 0 0 0 * * * ');
    expect(String(schedule)).toBe(' 0 0 0 * * * ');
  });
});

describe("parseCron: the crate's whitespace rules", () => {
  const same = (a: string, b: string) =>
    expect(upcoming(a, '2024-02-27T00:00:00', 5)).toEqual(upcoming(b, '2024-02-27T00:00:00', 5));

  it('takes spaces, tabs and newlines between and around fields', () => {
    same('  0\t0  0 * *\n*  ', '0 0 0 * * *');
  });

  it('lets numbers and names swallow the spaces around them', () => {
    same('0 0 0 1 , 15 * *', '0 0 0 1,15 * *');
    same('0 0 0 * * Mon - Fri', '0 0 0 * * Mon-Fri');
    same('0 0 0 * * Mon ,Fri', '0 0 0 * * Mon,Fri');
    same('*/ 5 * * * * *', '*/5 * * * * *');
    same('0 1 -5 * * * *', '0 1-5 * * * *');
    // `1 ` is a number with its space, so `,*` continues the list
    same('0 0 0 1 ,* * *', '0 0 0 * * *');
    same('0 0 0 *, 1 * *', '0 0 0 * * *');
  });

  it('reads fields that touch as separate fields, as the crate does', () => {
    same('* * * * * **', '* * * * * * *');
  });

  it.each([
    // `*` takes no spaces: the minutes field would start with `/`
    ['* /5 * * * * *', "cannot parse the minutes field at '/5'"],
    ['0 0 0 1, * * *', "cannot parse the day-of-month field at '1,'"],
    ['0 0 0 * * Mon, ?', "cannot parse the day-of-week field at 'Mon,'"],
  ])('refuses %j', (expression, message) => {
    expect(refusal(expression)).toContain(message);
  });
});

describe('parseCron: refusals', () => {
  it.each([
    [
      '0 0 * * *',
      'it has 5 fields, expected 6 or 7 (sec min hour day-of-month month day-of-week [year]); you probably forgot the seconds',
    ],
    ['*/5 * * * *', 'you probably forgot the seconds'],
    ['', 'it has 0 fields, expected 6 or 7'],
    ['   ', 'it has 0 fields, expected 6 or 7'],
    ['* * * *', 'it has 4 fields, expected 6 or 7'],
    ['1 2 3 4 5 6 2019 8', 'it has 8 fields, expected 6 or 7'],
    ['60 * * * * *', 'the seconds field: 60 is out of range 0-59'],
    ['0 60 * * * *', 'the minutes field: 60 is out of range 0-59'],
    ['0 0 24 * * *', 'the hours field: 24 is out of range 0-23'],
    ['0 0 0 0 * *', 'the day-of-month field: 0 is out of range 1-31'],
    ['0 0 0 32 * *', 'the day-of-month field: 32 is out of range 1-31'],
    ['0 0 0 * 0 *', 'the month field: 0 is out of range 1-12'],
    ['0 0 0 * 13 *', 'the month field: 13 is out of range 1-12'],
    ['0 0 0 * * 0', 'the day-of-week field: 0 is out of range 1-7 (Sunday = 1)'],
    ['0 0 0 * * 8', 'the day-of-week field: 8 is out of range 1-7 (Sunday = 1)'],
    ['0 0 0 * * * 1969', 'the year field: 1969 is out of range 1970-2100'],
    ['0 0 0 * * * 2101', 'the year field: 2101 is out of range 1970-2100'],
    ['0-65 * * * * *', 'the seconds field: 65 is out of range 0-59'],
    ['0-5,102 * * * * *', 'the seconds field: 102 is out of range 0-59'],
    ['70/5 * * * * *', 'the seconds field: 70 is out of range 0-59'],
    ['0 0 0 5-2 * *', 'the day-of-month field: range 5-2 ends before it starts'],
    ['0 0 0 * * Fri-Mon', 'the day-of-week field: range Fri-Mon ends before it starts'],
    ['*/0 * * * * *', 'the seconds field: a step must be at least 1'],
    ['0 0 0 * * Funday', "the day-of-week field: 'Funday' is not a day of the week"],
    ['0 0 0 * * MON,TURTLE', "the day-of-week field: 'TURTLE' is not a day of the week"],
    ['0 0 0 * * BEAR-OWL', "the day-of-week field: 'BEAR' is not a day of the week"],
    ['0 0 0 1 Sept *', "the month field: 'Sept' is not a month"],
    ['Mon * * * * *', "the seconds field does not accept names ('Mon')"],
    ['0 0 0 Jan * *', "the day-of-month field does not accept names ('Jan')"],
    ['0 0 0 * * * Jan', "the year field does not accept names ('Jan')"],
    ['0 0 0 * * Mon/2', "cannot parse the day-of-week field at 'Mon/2'"],
    ['0 0 0 1 February/2 *', "cannot parse the month field at 'February/2'"],
    ['0 0 0 * * 1-Fri', "cannot parse the day-of-week field at '1-Fri'"],
    ['10-12/10-12 * * * * ?', "cannot parse the seconds field at '10-12/10-12'"],
    ['10-12/* * * * * *', "cannot parse the seconds field at '10-12/*'"],
    ['? * * * * *', "cannot parse the seconds field at '?'"],
    ['0 ? * * * *', "cannot parse the minutes field at '?'"],
    ['0 0 0 * ? *', "cannot parse the month field at '?'"],
    ['0 0 0 L * *', "the day-of-month field does not accept names ('L')"],
    ['0 0 0 * * 5#3', "cannot parse the day-of-week field at '5#3'"],
    ['99999999999 * * * * *', "cannot parse the seconds field at '99999999999'"],
    ['* * * * * *foo *', "unexpected '*' after the year field"],
    ['* * * * * * * foo', 'it has 8 fields, expected 6 or 7'],
    ['* * * * * * *foo', "cannot parse the year field at '*foo'"],
    ['@annually', "unknown shorthand '@annually' (known: @yearly, @monthly, @weekly, @daily, @hourly)"],
    ['@Daily', "unknown shorthand '@Daily'"],
    ['@daily *', "unexpected '*' after @daily"],
    ['@dailyfoo', "unexpected 'foo' after @daily"],
  ])('%j', (expression, message) => {
    const text = refusal(expression);
    expect(text).toContain(message);
    expect(text.startsWith(`invalid cron expression '${expression}': `)).toBe(true);
  });

  it('accepts ? in the day fields only, as *', () => {
    expect(() => parseCron('* * * ? * ?')).not.toThrow();
    expect(() => parseCron('0 0 0 ?/2 * *')).not.toThrow();
    expect(upcoming('0 0 0 ? * *', '2020-09-17T00:00:00', 1)).toEqual(['2020-09-18T00:00:00']);
  });

  it('accepts a step larger than the field, which leaves its start only', () => {
    expect(upcoming('*/100 * * * * *', '2024-01-01T00:00:00', 2)).toEqual([
      '2024-01-01T00:01:00',
      '2024-01-01T00:02:00',
    ]);
  });

  it('accepts leading zeros and surrounding whitespace around shorthands', () => {
    expect(upcoming('00 05 01 01 01 *', '2024-06-01T00:00:00', 1)).toEqual(['2025-01-01T01:05:00']);
    expect(upcoming('  @hourly\t', '2024-06-01T00:30:00', 1)).toEqual(['2024-06-01T01:00:00']);
  });

  it('refuses an invalid date to start from', () => {
    expect(() => parseCron('* * * * * *').next(new Date(Number.NaN))).toThrow(RangeError);
  });
});

describe('parseCron: next agrees with a brute-force search', () => {
  /** Steps one second at a time until `includes` matches; `limit` seconds at most. */
  function bruteForce(schedule: CronSchedule, after: Date, limit: number): Date | undefined {
    // only as many steps as the real gap, so a generous limit costs nothing when next is right
    let time = Math.floor(after.getTime() / 1000) * 1000 + 1000;
    for (let i = 0; i < limit; i++, time += 1000) {
      const at = new Date(time);
      if (schedule.includes(at)) return at;
    }
    return undefined;
  }

  // deterministic pseudo-random numbers (mulberry32)
  let seed = 0x5eed;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const number = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));

  function item(min: number, max: number): string {
    const a = number(min, max);
    const b = number(a, max);
    return pick([
      `${a}`,
      `${a}-${b}`,
      `*/${number(1, 9)}`,
      `${a}/${number(1, 9)}`,
      `${a}-${b}/${number(1, 4)}`,
      '*',
    ]);
  }
  const list = (min: number, max: number) =>
    Array.from({ length: number(1, 3) }, () => item(min, max)).join(',');

  it('on 100 random expressions', () => {
    for (let i = 0; i < 100; i++) {
      const expression = [
        list(0, 59),
        list(0, 59),
        list(0, 23),
        pick(['*', '*', '?', '1-31/2', '2-31/2']),
        '*',
        pick(['*', '?', '*/2', '2-7']),
      ].join(' ');
      const schedule = parseCron(expression);
      const after = new Date(
        Date.UTC(2024, number(0, 11), number(1, 28), number(0, 23), number(0, 59), number(0, 59)),
      );
      const expected = bruteForce(schedule, after, 20 * 86_400);
      expect(expected, expression).toBeDefined();
      expect(schedule.next(after), `${expression} after ${after.toISOString()}`).toEqual(expected);
    }
  });
});

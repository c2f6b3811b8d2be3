import { InputError } from '../errors.js';

/**
 * Timestamps as the store keeps them: RFC 3339 in UTC with exactly nine fraction digits
 * (`2024-05-01T12:34:56.123000000Z`).
 *
 * @remarks The fixed width makes text order chronological on every engine, the nine digits hold the
 * original's nanosecond precision, and text avoids each driver's own date conversions. A `Date`
 * fills the last six digits with zeros.
 */
export type StoredTimestamp = string;

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

const pad = (value: number, width: number): string => String(value).padStart(width, '0');

/** Formats a `Date` in the stored form; `InputError` for an invalid date or a year outside 0–9999. */
export function formatTimestamp(date: Date): StoredTimestamp {
  const time = date.getTime();
  if (!Number.isFinite(time)) throw new InputError('invalid date');
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw new InputError(`date out of range: year ${year}`);
  return (
    `${pad(year, 4)}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)}` +
    `T${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}` +
    `.${pad(date.getUTCMilliseconds(), 3)}000000Z`
  );
}

/**
 * Parses an RFC 3339 date-time (any offset, `T`, `t` or a space between date and time, any number
 * of fraction digits, of which the first nine count) into the stored form; undefined when `text` is
 * not one.
 */
export function parseTimestamp(text: string): StoredTimestamp | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s, fraction = '', zulu, sign, oh, om] = match;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const local = new Date(0);
  local.setUTCFullYear(year, month - 1, day);
  local.setUTCHours(hour, minute, second, 0);
  // Date normalises overflow (Feb 30 → Mar 2); a valid date-time survives unchanged.
  if (
    local.getUTCFullYear() !== year ||
    local.getUTCMonth() !== month - 1 ||
    local.getUTCDate() !== day ||
    local.getUTCHours() !== hour ||
    local.getUTCMinutes() !== minute ||
    local.getUTCSeconds() !== second
  ) {
    return undefined;
  }
  let offsetMinutes = 0;
  if (!zulu) {
    const hours = Number(oh);
    const minutes = Number(om);
    if (hours > 23 || minutes > 59) return undefined;
    offsetMinutes = (sign === '-' ? -1 : 1) * (hours * 60 + minutes);
  }
  const utc = new Date(local.getTime() - offsetMinutes * 60_000);
  if (utc.getUTCFullYear() < 0 || utc.getUTCFullYear() > 9999) return undefined;
  return `${formatTimestamp(utc).slice(0, 19)}.${fraction.slice(0, 9).padEnd(9, '0')}Z`;
}

/** The stored form of a `Date` or an RFC 3339 string; `InputError` when the string is not one. */
export function toStoredTimestamp(time: Date | string): StoredTimestamp {
  if (time instanceof Date) return formatTimestamp(time);
  const stored = parseTimestamp(time);
  if (stored === undefined) throw new InputError(`not an RFC 3339 date-time: '${time}'`);
  return stored;
}

/** The `Date` of a stored timestamp (digits beyond milliseconds are dropped). */
export function fromStoredTimestamp(stored: StoredTimestamp): Date {
  return new Date(`${stored.slice(0, 23)}Z`);
}
